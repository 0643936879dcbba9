"""The end of `tokentra demo`: what the intelligence jobs find in the demo organization's traffic.

The rollups are made current (the `rollups` job's refresh), then the recommendations, anomalies and
forecasts jobs run their per-organization step for the demo organization alone, through the same code
and tables as in production. The planted cost spike lies days back, so the anomalies job is also run as
its ten-minute schedule would have run it then: as the spike ends (the incident is open, and the
explanations job explains it), the morning after, then as of now, which closes the incident because the
series is back to normal."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from rich.console import Console
from rich.table import Table

from tokentra_core.db import connect
from tokentra_core.settings import Settings
from tokentra_dev.traffic import SPIKE_DAY, spike_window

__all__ = ["show"]

console = Console()


def _money(v: Decimal | float | None) -> str:
    return f"${(v or 0):,.2f}"


def refresh_rollups(conn) -> None:
    """The `rollups` job's refresh, repeated until it has caught up with the demo's traffic (a refresh
    that finds the lock taken by a writer or by the worker's own refresh is tried again shortly)."""
    for _ in range(1000):
        stats = conn.execute("select private.refresh_usage_rollups() as s").fetchone()["s"]
        conn.commit()
        skipped = stats.get("skipped", "")
        if "continuous aggregates" in skipped:
            return  # TimescaleDB layout: they refresh themselves
        if skipped:
            time.sleep(0.2)
        elif stats.get("caught_up"):
            return


def spike_end(days: int, now: datetime) -> datetime | None:
    """The end of the planted spike's last hour, or None when the traffic is too short to hold it."""
    window = spike_window(days, now)
    return window[1] if window else None


def show(org_id: UUID, days: int, settings: Settings) -> None:
    from tokentra_dev.demo_llm import explain
    from tokentra_worker import anomalies, forecasts, recommendations

    org, now = str(org_id), datetime.now(UTC)
    with connect() as conn:
        refresh_rollups(conn)
        recommendations.run_org(conn, org, now)
        conn.commit()
        spike = spike_end(days, now)
        if spike is not None:
            anomalies.run_org(conn, org, spike)  # as it ends: the incident is open, so it gets explained
            conn.commit()
            explain(settings, org, spike)
            anomalies.run_org(conn, org, spike + timedelta(hours=1))
            conn.commit()
        anomalies.run_org(conn, org, now)
        conn.commit()
        if spike is None:
            explain(settings, org, now)
        forecasts.run_org(conn, org, now)
        conn.commit()
        print_recommendations(conn, org)
        print_anomalies(conn, org, days, spike)
        print_forecast(conn, org)


def print_recommendations(conn, org: str, limit: int = 12) -> None:
    recs = conn.execute(
        "select category, scope_type, scope_value, title, estimated_monthly_savings as savings, confidence "
        "from public.recommendations where org_id = %s and status = 'open' "
        "order by estimated_monthly_savings desc",
        (org,),
    ).fetchall()
    if not recs:
        console.print("\n[bold]Recommendations[/bold]: none found (no pattern saves $1 or more a month yet).")
        return
    total = sum(r["savings"] for r in recs)
    console.print(
        f"\n[bold]Recommendations: {len(recs)} found, {_money(total)} a month in estimated savings[/bold]"
    )
    table = Table(title=f"Top {min(limit, len(recs))} by monthly savings", title_justify="left")
    for col in ("category", "scope", "recommendation", "savings/month", "confidence"):
        table.add_column(col, justify="right" if col in ("savings/month", "confidence") else "left")
    for r in recs[:limit]:
        table.add_row(
            r["category"],
            f"{r['scope_type']}={r['scope_value']}",
            r["title"],
            _money(r["savings"]),
            f"{r['confidence']:.0%}",
        )
    console.print(table)


def print_anomalies(conn, org: str, days: int, spike: datetime | None) -> None:
    rows = conn.execute(
        "select metric, dimension, dimension_value, grain, kind, severity, status, window_start, window_end, "
        "expected_value, actual_value, money_involved, score from public.anomalies where org_id = %s "
        # The organization's hourly cost spike first (its explanation splits it by feature, team and
        # model), not whichever of the series holding the same spike carries a cent more.
        "order by (metric = 'cost' and kind = 'spike') desc, (dimension = 'organization' and grain = 'hour') desc, "
        "money_involved desc nulls last limit 8",
        (org,),
    ).fetchall()
    if not rows:
        why = (
            f"only {days} days of traffic, and the planted spike is on day {SPIKE_DAY}"
            if spike is None
            else "nothing deviated enough from its seasonal baseline"
        )
        console.print(f"\n[bold]Anomalies[/bold]: none found ({why}).")
        return
    top = rows[0]  # the cost spike with the most money in it, else the costliest incident
    where = "the organization" if top["dimension"] == "organization" else \
        f"{top['dimension']} {top['dimension_value']}"
    console.print(
        f"\n[bold]Anomaly: {top['metric']} of {where}, "
        f"{_window(top['window_start'], top['window_end'])} UTC[/bold]\n"
        f"  {_money(top['actual_value'])} an {top['grain']} against {_money(top['expected_value'])} expected; "
        f"{_money(top['money_involved'])} above the baseline; severity {top['severity']}, {top['status']}"
    )
    table = Table(title="Anomalies recorded (one per incident and series)", title_justify="left")
    for col in ("metric", "series", "window (UTC)", "expected", "actual", "money", "severity", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["metric"],
            f"{r['dimension']}={r['dimension_value'] or 'all'}",
            _window(r["window_start"], r["window_end"]),
            f"{float(r['expected_value']):,.3g}",
            f"{float(r['actual_value']):,.3g}",
            _money(r["money_involved"]),
            r["severity"],
            r["status"],
        )
    console.print(table)


def _window(start: datetime, end: datetime | None) -> str:
    if end is None:
        return f"{start:%a %d %b %H:%M}–"
    return f"{start:%a %d %b %H:%M}–{end:%H:%M}" if end - start < timedelta(hours=24) and end.day == start.day \
        else f"{start:%a %d %b %H:%M}–{end:%a %d %b %H:%M}"


def print_forecast(conn, org: str) -> None:
    f = conn.execute(
        "select * from public.spend_forecasts where org_id = %s and budget_id is null "
        "order by period_start desc limit 1",
        (org,),
    ).fetchone()
    if f is None or not f["history"]:
        console.print("\n[bold]Forecast[/bold]: none (no complete day of spend yet to forecast from).")
        return
    console.print(
        f"\n[bold]Month-end forecast ({f['period_start']:%B %Y}): {_money(f['forecast'])}[/bold]\n"
        f"  80% interval {_money(f['lower_80'])}–{_money(f['upper_80'])}, "
        f"95% interval {_money(f['lower_95'])}–{_money(f['upper_95'])}\n"
        f"  spent so far {_money(f['spent_to_date'])}; method: {f['method']}"
    )
    if len(f["history"]) < 14:
        console.print(
            f"  (only {len(f['history'])} complete days of history: the short-history fallback, "
            "not the seasonal model, made this forecast)"
        )
    chart(f["history"], f["daily_forecast"])


def chart(history: list[dict], daily: list[dict]) -> None:
    """Daily spend (solid) and the forecast's expected days (shaded, with the 80% upper bound)."""
    peak = max([h["spend"] for h in history] + [d["upper_80"] for d in daily] + [1e-9])
    console.print("\n[bold]Daily spend and forecast[/bold] (█ spent, ░ forecast, │ 80% upper bound)")
    for h in history:
        day = datetime.fromisoformat(h["day"])
        console.print(f"{day:%a %d %b} [cyan]{'█' * int(50 * h['spend'] / peak)}[/cyan] {_money(h['spend'])}")
    for d in daily:
        day = datetime.fromisoformat(d["day"])
        width, upper = int(50 * d["expected"] / peak), int(50 * d["upper_80"] / peak)
        bar = "░" * width + " " * max(upper - width, 0) + "│"
        console.print(
            f"{day:%a %d %b} [yellow]{bar}[/yellow] {_money(d['expected'])} "
            f"(80%: {_money(d['lower_80'])}–{_money(d['upper_80'])})"
        )
