"""The reconciliation step reconciles and commits each organization on its own: one organization whose
reconciliation fails is rolled back and logged, and the others keep their fresh rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from recon_helpers import month

from tokentra_core.db import connect
from tokentra_worker.gap_causes import run_gap_causes


def _rows(dsn: str, org: str) -> int:
    with connect(dsn) as conn:
        return conn.execute("select count(*) as n from private.reconciliation_daily where org_id = %s",
                            (org,)).fetchone()["n"]


def test_one_failing_organization_costs_the_others_nothing(dsn, admin_server, connect_org, sync, caplog):
    now = datetime.now(UTC)
    admin_server.ledger = month(random.randint(1000, 9999), now, days=3)
    orgs = [connect_org(admin_server).org_id for _ in range(3)]
    sync(*orgs, now=now, reconciliation_backfill_days=3)
    bad = random.choice(orgs)
    # plant a failure for one organization only: its rows cannot be written
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"alter table private.reconciliation_daily add constraint planted_failure "  # noqa: S608
                     f"check (org_id <> '{bad}'::uuid) not valid")
    try:
        random.shuffle(orgs)
        summary = run_gap_causes(dsn, days=3, orgs=orgs)
    finally:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("alter table private.reconciliation_daily drop constraint planted_failure")
    assert "reconciled 2 organization(s), 1 failed" in summary, summary
    assert f"reconciliation failed for organization {bad}" in caplog.text
    assert "planted_failure" in caplog.text
    for org in orgs:
        assert (_rows(dsn, org) > 0) == (org != bad), org
    # and once the cause is gone, the next run reconciles it too
    assert "reconciled 1 organization(s);" in run_gap_causes(dsn, days=3, orgs=[bad])
    assert _rows(dsn, bad) > 0
