"""The reconciliation job's last step: once the providers' reports are synced, reconcile the last days of
every organization with an admin key in SQL (tracked against billed, the gap by cause) and evaluate the
drift alert rules on the fresh rows.

Each organization is reconciled and committed on its own: one that fails is rolled back and logged, and
the others keep their fresh rows (and their advisory locks are not held until the last one is done)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tokentra_core.db import Conn, connect, one
from tokentra_worker._per_org import dsn_of, for_each_active_org

__all__ = ["run_gap_causes"]

DAYS = 31  # the sync's backfill: every day it may have revised

log = logging.getLogger("tokentra.worker")


def run_gap_causes(ctx: Any, days: int = DAYS, orgs: list[str] | None = None) -> str:
    """Reconcile (every organization with an admin key, or `orgs`) and evaluate drift alerts; a one-line
    summary. `ctx` is a JobContext or a database URL."""
    dsn = dsn_of(ctx)
    if orgs is None:
        with connect(dsn, autocommit=True) as conn:
            orgs = [str(r["o"]) for r in conn.execute("select o from private.reconciliation_orgs() o").fetchall()]

    def reconcile(conn: Conn, org: str, now: datetime) -> dict[str, int]:
        today = now.astimezone(UTC).date()
        conn.execute("select private.reconcile(%s, %s, %s)", (org, today - timedelta(days=days), today))
        return {"reconciled": 1}

    _, totals = for_each_active_org(ctx, datetime.now(UTC), days, reconcile, "reconciliation", orgs=orgs)
    with connect(dsn, autocommit=True) as conn:
        alerts = one(conn.execute("select private.evaluate_reconciliation_alerts() as r"))["r"]
    for f in alerts.get("failed", []):
        log.warning("reconciliation_drift rule %s of organization %s skipped: %s", f["rule_id"], f["org_id"],
                    f["message"])
    failed = f", {totals['failed']} failed" if totals.get("failed") else ""
    return (f"reconciled {totals.get('reconciled', 0)} organization(s){failed}; drift alerts: "
            f"{alerts['raised']} raised, {alerts['resolved']} resolved")
