"""The deterministic weekly report: what is stored when the LLM is off, capped, failing, or keeps citing
numbers the evidence lacks. Every figure is an evidence figure, formatted, so the text passes the same
grounding check as the LLM's (tests hold it to that on randomised evidence)."""

from __future__ import annotations

from typing import Any

from tokentra_worker.explanations.templates import DIMENSION, Prose, money

__all__ = ["weekly_text"]

SKIPPED = ("(none)", "(other)")


def _signed(v: float) -> str:
    return ("+" if v >= 0 else "-") + money(abs(v))


def _pct(v: float, signed: bool = False) -> str:
    return f"{'+' if signed and v >= 0 else ''}{v:g}%"


def _day(ts: str) -> str:
    return ts[:10]


def _when(ts: str) -> str:
    return ts.replace("T", " ").removesuffix("Z") + " UTC"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _headline(ev: dict[str, Any]) -> str:
    s = ev["spend"]
    week = f"the week of {_day(ev['period']['start'])}"
    spent = f"Spend was {money(s['this_week_usd'])} in {week}"
    if not s["previous_week_usd"]:
        return f"{spent}; there was no spend the week before."
    if not s["change_usd"]:
        return f"{spent}, the same as the week before."
    direction = "up" if s["change_usd"] > 0 else "down"
    pct = f" ({_pct(s['change_pct'], signed=True)})" if "change_pct" in s else ""
    return (f"{spent}, {direction} {money(abs(s['change_usd']))}{pct} from {money(s['previous_week_usd'])} the week "
            f"before.")


def _drivers(ev: dict[str, Any]) -> str | None:
    parts = []
    for dim in ("model", "feature", "team"):
        first = next((d for d in ev["top_drivers"].get(dim, []) if d["value"] not in SKIPPED), None)
        if first:
            parts.append(f"{DIMENSION.get(dim, dim)} {first['value']} ({_signed(first['change_usd'])}, "
                         f"{money(first['this_week_usd'])} against {money(first['previous_week_usd'])})")
    return "The largest changes: " + "; ".join(parts) + "." if parts else None


def _anomalies(ev: dict[str, Any]) -> str:
    a = ev["anomalies"]
    if not a["count"]:
        return "No anomaly started this week."
    text = f"{_plural(a['count'], 'anomaly', 'anomalies')} started this week"
    if a["high_or_critical"]:
        text += f" ({a['high_or_critical']:,} high or critical)"
    if a["money_involved_usd"]:
        text += f", involving {money(a['money_involved_usd'])}"
    if a["largest"]:
        x = a["largest"][0]
        scope = ("the organization" if x.get("dimension", "organization") == "organization"
                 else f"{DIMENSION.get(x['dimension'], x['dimension'])} {x.get('dimension_value')}")
        money_part = f", {money(x['money_involved_usd'])}" if "money_involved_usd" in x else ""
        text += f"; the largest: {x['metric']} of {scope} from {_when(x['window_start'])} ({x['severity']}{money_part})"
    return text + "."


def _budgets(ev: dict[str, Any]) -> str:
    risky = ev["budgets_at_risk"]
    if not risky:
        return "No budget is at risk."
    out = []
    for b in risky[:3]:
        out.append(f"Budget \"{b['name']}\" ({b['period']}, {b['status']}) has spent "
                   f"{money(b['current_spend_usd'])} of {money(b['amount_usd'])} ({_pct(b['spent_pct'])}) "
                   f"and is projected to reach "
                   f"{money(b['projected_spend_usd'])} ({_pct(b['projected_pct'])}) by {_when(b['period_end'])}.")
    if len(risky) > 3:
        out.append("Other budgets are at risk too.")
    return " ".join(out)


def _recommendations(ev: dict[str, Any]) -> str:
    r = ev["recommendations"]
    out = []
    if r["applied_this_week"]:
        titles = [f"\"{x['title']}\"" for x in r["applied"] if x.get("applied_this_week")]
        out.append(f"{_plural(r['applied_this_week'], 'recommendation was', 'recommendations were')} applied this "
                   f"week: {', '.join(titles)}.")
    if r["applied_total"]:
        estimated = money(r["estimated_monthly_savings_of_applied_usd"])
        if r["measured"]:
            out.append(f"Measured so far, applied recommendations save {money(r['realised_monthly_savings_usd'])} "
                       f"a month ({r['measured']:,} of {r['applied_total']:,} measured; {estimated} estimated).")
        else:
            applied = _plural(r["applied_total"], "applied recommendation", "applied recommendations")
            out.append(f"The savings of {applied} are not measured yet; they were estimated at {estimated} a month.")
    else:
        out.append("No recommendation has been applied yet.")
    if r["open"]:
        out.append(f"{_plural(r['open'], 'open recommendation', 'open recommendations')} could save an estimated "
                   f"{money(r['open_estimated_monthly_savings_usd'])} a month.")
    return " ".join(out)


def weekly_text(ev: dict[str, Any]) -> Prose:
    """The weekly report built from its evidence (public.weekly_report_evidence) alone."""
    s = ev["spend"]
    opening = f"{_plural(s['requests'], 'request was', 'requests were')} recorded this week."
    if not s["requests"]:
        opening = "No request was recorded this week."
    paragraphs = [opening + (" " + d if (d := _drivers(ev)) else ""), _anomalies(ev), _budgets(ev),
                  _recommendations(ev)]
    return Prose(headline=_headline(ev), body="\n\n".join(paragraphs))
