"""The demo's reconciliation section: a local provider admin server bills the demo month's tracked calls (at
the providers' prices, with gaps planted: traffic under a key we never saw, a price change, web searches,
calls billed after midnight, cache reads the SDK under-reported), the real reconciliation job syncs the
reports and reconciles, and the section prints tracked against billed with each cause and its amount,
beside what was planted."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from rich.console import Console
from rich.table import Table

from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_core.settings import Settings
from tokentra_dev.recon_world import Model, bill_rows, world_prices
from tokentra_dev.testing.provider_admin_servers import (
    ANTHROPIC_ADMIN_KEY,
    OPENAI_ADMIN_KEY,
    ProviderAdminServer,
)

console = Console()
SEED = 16


def _money(v: Decimal | float | None) -> str:
    return "-" if v is None else f"${Decimal(str(v)):,.4f}"


def show(org_id: UUID, settings: Settings) -> None:
    from tokentra_worker.gap_causes import run_gap_causes
    from tokentra_worker.provider_sync import run_provider_sync

    now = datetime.now(UTC)
    with connect() as conn:
        rows = conn.execute(
            "select provider, model, canonical_model, occurred_at, input_tokens, cached_tokens, cache_write_tokens, "
            "output_tokens, service_tier from public.usage_records where org_id = %s and priced "
            "and lower(provider) in ('openai', 'anthropic') and occurred_at < %s order by occurred_at",
            (org_id, now.replace(hour=0, minute=0, second=0, microsecond=0))).fetchall()
    models = {Model(r["provider"], r["model"], r["canonical_model"]) for r in rows}
    prices = world_prices(settings.dsn, now.date() - timedelta(days=1), models)
    ledger, planted = bill_rows(rows, prices, SEED)
    with ProviderAdminServer(ledger) as server:
        with connect(autocommit=True) as conn:
            store_provider_connection(conn, org_id, "openai", "sk-demo-openai-billing", admin_key=OPENAI_ADMIN_KEY,
                                      base_url=server.openai_base_url, name="billing", replace=True)
            store_provider_connection(conn, org_id, "anthropic", "sk-ant-demo-billing", admin_key=ANTHROPIC_ADMIN_KEY,
                                      base_url=server.anthropic_base_url, name="billing", replace=True)
        synced = run_provider_sync(settings.dsn, now=now, orgs=[str(org_id)])
        reconciled = run_gap_causes(settings.dsn, orgs=[str(org_id)])
    with connect() as conn:
        report = conn.execute("select public.reconciliation_report(%s, %s, %s, group_by => array['provider']) as r",
                              (org_id, now.date() - timedelta(days=31), now.date() - timedelta(days=1))).fetchone()["r"]
        timing = conn.execute("select amount_usd from private.reconciliation_causes where org_id = %s "
                              "and cause = 'timing'", (org_id,)).fetchall()
        gaps = conn.execute(
            "select day, provider, canonical_model, cause, amount_usd, details from private.reconciliation_causes "
            "where org_id = %s order by abs(amount_usd) desc limit 12", (org_id,)).fetchall()

    console.print("\n[bold]Reconciliation[/bold] (the providers' own usage and cost reports against what we tracked; "
                  "GET /functions/v1/reconciliation, analytics.reconciliation_daily)", soft_wrap=True)
    console.print(f"  a local admin-report server billed the month; the job: {synced}; {reconciled}", soft_wrap=True)
    totals = report["meta"]["totals"]
    console.print(f"  tracked {_money(totals['tracked_cost'])}, billed {_money(totals['billed_cost'])}, "
                  f"gap {_money(totals['gap'])}, of which unexplained {_money(totals['unexplained'])}")
    truth: dict[str, Decimal] = defaultdict(Decimal)
    for p in planted:
        truth[p.cause] += p.amount_usd
    # timing moves cost from one day to the next: its amounts add up to zero, so show what was moved
    truth["timing"] = sum((p.amount_usd for p in planted if p.cause == "timing" and p.amount_usd > 0), Decimal(0))
    moved = sum((g["amount_usd"] for g in timing if g["amount_usd"] > 0), Decimal(0))
    table = Table(title="The gap by cause: found by the reconciliation, and planted", title_justify="left")
    for column in ("cause", "found", "planted", "ours (a re-price fixes it)"):
        table.add_column(column, justify="left" if column == "cause" else "right")
    ours = {c["cause"]: c["ours"] for c in report["meta"]["causes"]}
    for cause in [c["cause"] for c in report["meta"]["causes"]]:
        found = moved if cause == "timing" else totals["causes"].get(cause)
        if found is None and cause not in truth:
            continue
        label = "timing (moved across midnight)" if cause == "timing" else cause
        table.add_row(label, _money(found or 0), _money(truth.get(cause)), "yes" if ours[cause] else "")
    console.print(table)
    console.print("  the largest gaps, each named with its cause:")
    for g in gaps:
        named = ""
        if g["cause"] == "untracked_traffic" and g["details"].get("names"):
            named = " (" + ", ".join(n["id"] for n in g["details"]["names"]) + ")"
        console.print(f"    {g['day']} {g['provider']} {g['canonical_model'] or '(not per model)'}: "
                      f"{g['cause']} {_money(g['amount_usd'])}{named}")
    changed = [p for p in planted if p.cause == "price_change"]
    if changed:
        console.print(f"  re-price: POST /functions/v1/reconciliation/reprice with provider {changed[0].provider} and "
                      f"canonical_model {changed[0].canonical_model} sets the billed price from {changed[0].day}; the "
                      "price gap is gone from the next reconciliation", soft_wrap=True)
