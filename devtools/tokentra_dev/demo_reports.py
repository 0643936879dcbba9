"""The demo's weekly report: the `weekly_reports` job run for the demo organization over the last full
UTC week of its traffic, as Monday morning's schedule would, and the report read back with the SQL function
GET /functions/v1/reports/{id} answers with (public.report_of). With a provider key the LLM writes it
(every figure checked against the evidence); without one, the deterministic template with the same figures."""

from __future__ import annotations

from uuid import UUID

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding

from tokentra_core.db import connect
from tokentra_core.settings import Settings
from tokentra_worker.reports import run_weekly_reports

__all__ = ["show"]

console = Console()
_WHY = {"llm_off": "no provider key", "ai_cap_reached": "the organization's AI cap is reached",
        "ungrounded": "the model cited numbers absent from the evidence twice", "llm_failed": "the LLM calls failed"}


def show(org_id: UUID, settings: Settings) -> None:
    summary = run_weekly_reports(settings.dsn, orgs=[str(org_id)], settings=settings)
    with connect(settings.dsn) as conn:
        row = conn.execute("select public.report_of(r.id) as r, (select count(*) from private.alert_deliveries d"
                           " where d.report_id = r.id)::int as queued from public.reports r where r.org_id = %s"
                           " order by r.period_start desc limit 1", (org_id,)).fetchone()
    if row is None:
        console.print(f"\n[bold]Weekly report[/bold]: none written ({escape(summary)}).")
        return
    r = row["r"]
    if r["method"] == "llm":
        how = (f"written by {r['provider']}:{r['model']}, every figure checked against the evidence; "
               f"{r['llm_calls']} call(s), ${float(r['cost_usd']):.4f}")
    else:
        how = f"the deterministic template; {r['fallback_reason']}: {_WHY.get(r['fallback_reason'], '')}"
    console.print(f"\n[bold]Weekly report, week of {r['period_start'][:10]}[/bold] ({how}; grounded: {r['grounded']}; "
                  f"{row['queued']} deliver{'y' if row['queued'] == 1 else 'ies'} queued in the alert outbox)")
    console.print(Padding(f"[bold]{escape(r['headline'])}[/bold]\n\n{escape(r['narrative'])}", (0, 0, 0, 2)))
