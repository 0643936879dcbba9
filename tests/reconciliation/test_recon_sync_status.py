"""The reconciliation's answer says how far each provider report is synced and why not: a refused admin key
shows its error, a synced report how far it reaches, so a day not billed yet is not read as a gap; another
organization's connections never show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from recon_helpers import month
from typer.testing import CliRunner

from org_fixtures import api, make_org
from tokentra_cli.cli import app as cli
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_dev.testing.provider_admin_servers import ANTHROPIC_ADMIN_KEY, ProviderAdminServer
from tokentra_functions.reconciliation import ReconciliationResponse


def test_the_endpoint_shows_each_reports_sync_and_its_last_error(dsn, functions_url, admin_server, sync):
    now = datetime.now(UTC)
    admin_server.ledger = month(5, now, days=2)
    org, other = make_org(dsn), make_org(dsn)
    wrong = "sk-admin-REFUSED-0123456789abcdef"
    with connect(dsn, autocommit=True) as conn:
        refused = store_provider_connection(conn, org.id, "openai", "sk-inference-openai-0000", admin_key=wrong,
                                            base_url=admin_server.openai_base_url)
        synced = store_provider_connection(conn, org.id, "anthropic", "sk-ant-inference-0000",
                                           admin_key=ANTHROPIC_ADMIN_KEY, base_url=admin_server.anthropic_base_url)
        with ProviderAdminServer() as elsewhere:
            store_provider_connection(conn, other.id, "anthropic", "sk-ant-inference-0000",
                                      admin_key=ANTHROPIC_ADMIN_KEY, base_url=elsewhere.anthropic_base_url)
    sync(org.id, now=now, reconciliation_backfill_days=2)

    day = (now - timedelta(days=1)).date().isoformat()
    params = {"org_id": org.id, "start_date": day, "end_date": day}
    r = api(functions_url, "GET", "/reconciliation", org.auth("viewer"), params=params)
    assert r.status_code == 200, r.text
    status = ReconciliationResponse.model_validate(r.json()).meta.sync
    by = {(s.connection_id, s.endpoint): s for s in status}
    assert {c for c, _ in by} == {refused, synced}  # the other organization's connection is not shown
    assert len(by) == 5  # every report endpoint of both connections, synced or not
    for (connection, _), s in by.items():
        assert str(s.org_id) == org.id
        if connection == refused:
            assert s.synced_through is None and s.last_error and "HTTP 401" in s.last_error
            assert s.consecutive_failures == 1 and "REFUSED" not in s.last_error
        else:
            assert s.last_error is None and not s.in_progress
            assert s.synced_through is not None and s.synced_through.date() >= now.date()
    # a provider filter narrows the status too
    only = api(functions_url, "GET", "/reconciliation", org.auth("viewer"),
               params={**params, "provider": "anthropic"}).json()["meta"]["sync"]
    assert {s["connection_id"] for s in only} == {str(synced)}
    # the other organization's admin sees its own connection only
    theirs = api(functions_url, "GET", "/reconciliation", other.auth("admin"),
                 params={"start_date": day, "end_date": day}).json()["meta"]["sync"]
    assert {s["org_id"] for s in theirs} == {other.id} and len(theirs) == 2


def test_providers_list_shows_each_connections_sync(dsn, admin_server, connect_org, sync):
    now = datetime.now(UTC)
    admin_server.ledger = month(6, now, days=2)
    good = connect_org(admin_server)
    bad = connect_org(admin_server, openai_key="sk-admin-REFUSED-0123456789abcdef")
    sync(good.org_id, bad.org_id, now=now, reconciliation_backfill_days=2)
    runner = CliRunner()
    listed = runner.invoke(cli, ["providers", "list", "--org", bad.org_id, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["provider"]: r for r in json.loads(listed.output)}
    assert len(rows["openai"]["sync"]) == 3 and len(rows["anthropic"]["sync"]) == 2
    assert all("HTTP 401" in s["last_error"] for s in rows["openai"]["sync"])
    assert all(s["last_error"] is None and s["synced_through"] for s in rows["anthropic"]["sync"])
    table = runner.invoke(cli, ["providers", "list", "--org", bad.org_id], env={"COLUMNS": "400"})
    assert "failing: openai" in table.output and "through " in table.output, table.output
    assert "REFUSED" not in listed.output + table.output
    fine = runner.invoke(cli, ["providers", "list", "--org", good.org_id], env={"COLUMNS": "400"})
    assert "failing" not in fine.output and fine.output.count("through ") == 2, fine.output
