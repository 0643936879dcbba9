"""`tokentra demo`: the main job. A demo organization sends a month of traffic through the real SDK
to the real ingest function, and the platform shows what it knows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokentra_cli import admin
from tokentra_cli.functions_server import start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.settings import get_settings
from tokentra_dev.traffic import month_of_traffic

console = Console()


def send_traffic(url: str, key: str, days: int, end: datetime) -> dict[str, int]:
    import tokentra

    tokentra.configure(api_key=key, url=url, max_queue_size=200_000)
    events = list(month_of_traffic(days=days, end=end))
    with Progress(TextColumn("sending {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{days} days of traffic", total=len(events))
        for i, event in enumerate(events, 1):
            tokentra.record(event)
            if i % 1000 == 0:
                progress.update(task, completed=i)
        tokentra.flush()
        progress.update(task, completed=len(events))
    return tokentra.stats()


def _money(v: Decimal | None) -> str:
    return f"${(v or 0):,.2f}"


def _table(title: str, rows: list[dict], label: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(label)
    table.add_column("requests", justify="right")
    table.add_column("spend", justify="right")
    for r in rows:
        table.add_row(str(r["k"]), f"{r['n']:,}", _money(r["cost"]))
    return table


def report(org_id: str) -> None:
    """What the platform knows about the organization's spend (from SQL over usage_records)."""
    def by(column: str, limit: int = 10) -> list[dict]:
        return conn.execute(
            f"select coalesce({column}, '(none)') as k, count(*) as n, sum(cost_usd) as cost "  # noqa: S608
            "from public.usage_records where org_id = %s group by 1 order by cost desc nulls last limit %s",
            (org_id, limit)).fetchall()

    with connect() as conn:
        total = conn.execute("select count(*) as n, sum(cost_usd) as cost, count(*) filter (where not priced) as u "
                             "from public.usage_records where org_id = %s", (org_id,)).fetchone()
        daily = conn.execute("select date_trunc('day', occurred_at) as d, sum(cost_usd) as cost "
                             "from public.usage_records where org_id = %s group by 1 order by 1", (org_id,)).fetchall()
        console.print(f"\n[bold]{total['n']:,} requests, {_money(total['cost'])} spent[/bold] "
                      f"({total['u']} unpriced)")
        console.print(_table("Spend by model", by("model"), "model"))
        console.print(_table("Spend by team", by("team"), "team"))
        console.print(_table("Spend by feature", by("feature"), "feature"))
        console.print(_table("Top end users", by("end_user_id", 5), "end user"))
    chart(daily)


def chart(daily: list[dict]) -> None:
    """Daily spend as a terminal bar chart."""
    peak = max((d["cost"] or 0 for d in daily), default=0) or 1
    console.print("\n[bold]Daily spend[/bold]")
    for d in daily:
        width = int(50 * (d["cost"] or 0) / peak)
        console.print(f"{d['d']:%a %d %b} [cyan]{'█' * width}[/cyan] {_money(d['cost'])}")


def run(days: int = 30, keep_serving: bool = False) -> None:
    settings = get_settings()
    with connect() as conn:
        org = admin.create_org(conn, "Demo Co")
        # Enterprise: a documented consensus trigger, so its recommendations get the multi-agent review.
        conn.execute("update public.organizations set plan = 'enterprise' where id = %s", (org.id,))
        key = admin.create_key(conn, org.id, name="demo")
    proc, url = start_functions(settings.functions_port)
    # TokenTRA's own LLM calls are recorded through the ingest function just started (its port may differ).
    settings = settings.model_copy(update={"llm_ingest_url": settings.llm_ingest_url or f"{url}/ingest"})
    try:
        console.print(f"[bold]Functions[/bold]  {url}  (OpenAPI: {url}/openapi.json)")
        console.print(f"[bold]Database[/bold]   {settings.dsn if not settings.database_url else 'DATABASE_URL'}")
        console.print(f"[bold]Demo org[/bold]   {org.id}  (enterprise plan)")
        console.print(f"[bold]API key[/bold]    {key.key}  (shown once; only its hash is stored)")
        # One instant for the traffic and for where the intelligence section looks for its spike: a demo
        # that runs past midnight must not look for the spike a day after the one it sent.
        traffic_end = datetime.now(UTC)
        stats = send_traffic(url, key.key, days, traffic_end)
        console.print(f"SDK delivered {stats['accepted']:,} events ({stats['duplicates']} duplicates, "
                      f"{stats['rejected']} rejected, {stats['dropped_queue_full'] + stats['dropped_failed']} dropped, "
                      f"{stats['retries']} retries in {stats['requests']} requests)")
        report(str(org.id))
        from tokentra_dev.demo_budgets import show as show_budgets_and_alerts  # budgets, alerts, delivery

        show_budgets_and_alerts(org.id, url, key.key)
        from tokentra_dev.demo_intelligence import (
            show as show_intelligence,  # recommendations, anomalies, forecast
        )

        show_intelligence(org.id, days, settings, traffic_end)
        from tokentra_dev.demo_reports import show as show_report  # last week's grounded summary

        show_report(org.id, settings)  # before the LLM section, whose AI spend line then counts it too
        from tokentra_dev.demo_llm import show as show_llm  # consensus review, explanation, AI spend

        show_llm(org.id, settings)
        from tokentra_dev.demo_cache import show as show_cache  # the semantic cache on for one bot, from usage rows

        show_cache(org.id, url, key.key)
        from tokentra_dev.demo_routing import show as show_routing  # routing on for part of the traffic

        show_routing(org.id, url, key.key)
        from tokentra_dev.demo_reconciliation import show as show_reconciliation  # tracked against the bill

        show_reconciliation(org.id, settings)
        from tokentra_dev.demo_dashboard import show as show_dashboard

        if keep_serving:
            console.print(f"\nServing at {url}; Ctrl-C stops.")
        show_dashboard(org.id, url, settings, serving=keep_serving)
        from tokentra_dev.demo_manage import show as show_management  # the list commands' view of the org

        show_management(org.id)
        if keep_serving:
            proc.wait()
    finally:
        stop_functions(proc)
