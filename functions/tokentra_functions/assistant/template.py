"""The assistant's deterministic answer: what the same tools say about the last seven days, in fixed
sentences. It answers when no provider key is configured, the organization's AI cap is reached, the model
fails, or it keeps citing numbers the tool results do not hold. Every figure is a tool-result figure,
formatted, so the text passes the same grounding check as a model's answer (tests hold it to that)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tokentra_functions.assistant.tools import (
    AnomaliesArgs,
    BudgetsArgs,
    ComparePeriodsArgs,
    RecommendationsArgs,
    ToolContext,
    ToolResult,
    run_tool,
)

__all__ = ["Run", "template_answer"]

Run = tuple[str, dict[str, Any], ToolResult]  # (tool, arguments, result)


def money(v: float) -> str:
    """$1,234.57, or $0.0042 for amounts cents would round away."""
    a = abs(float(v))
    text = f"{a:,.2f}" if a >= 1 or round(a, 2) == a else f"{a:.4f}"
    return f"{'-' if v < 0 else ''}${text}"


def _signed(v: float) -> str:
    return ("+" if v >= 0 else "") + money(v)


def _period(compare: dict[str, Any]) -> str:
    cur, prev = compare["current"], compare["previous"]
    text = (f"Spend in the {cur['days']} days from {cur['start_date']} to {cur['end_date']} was "
            f"{money(cur['cost_usd'])}, against {money(prev['cost_usd'])} from {prev['start_date']} to "
            f"{prev['end_date']}")
    if compare.get("change_pct") is not None:
        return text + f" ({_signed(compare['change_usd'])}, {compare['change_pct']:+g}%)."
    return text + f" ({_signed(compare['change_usd'])})."


def _drivers(compare: dict[str, Any]) -> str | None:
    moved = [v for v in compare.get("by_value") or [] if v["change_usd"]][:3]
    if not moved:
        return None
    parts = []
    for v in moved:
        share = f", {v['share_of_change_pct']:g}% of the change" if v.get("share_of_change_pct") is not None else ""
        parts.append(f"{v['value']} {_signed(v['change_usd'])} ({money(v['previous_cost_usd'])} to "
                     f"{money(v['current_cost_usd'])}{share})")
    return f"Largest changes by {compare['dimension']}: " + "; ".join(parts) + "."


def _anomalies(found: dict[str, Any]) -> str:
    rows = found["anomalies"]
    if not rows:
        return "No open anomalies."
    top = rows[0]
    where = f"{top['dimension']} {top['dimension_value']}" if top.get("dimension_value") else "the organization"
    return (f"Open anomalies: {found['count']}; the latest, {top['severity']}, on {top['metric']} of {where} "
            f"from {top['window_start']}.")


def _budgets(found: dict[str, Any]) -> str | None:
    rows = found["budgets"]
    if not rows:
        return None
    return "Budgets at risk: " + "; ".join(
        f"{b['name']} {b['status']} at {money(b['current_spend'])} of {money(b['amount'])}" for b in rows[:3]) + "."


async def template_answer(ctx: ToolContext, reason: str) -> tuple[str, list[str], list[Run]]:
    """(answer, suggested actions, the runs it read) for the last 7 days against the 7 before."""
    end = ctx.today
    window = {"current_start": end - timedelta(days=6), "current_end": end,
              "previous_start": end - timedelta(days=13), "previous_end": end - timedelta(days=7)}
    asks: list[tuple[str, Any]] = [
        ("compare_periods", ComparePeriodsArgs.model_validate({"dimension": "model", "limit": 3, **window})),
        ("compare_periods", ComparePeriodsArgs.model_validate({"dimension": "feature", "limit": 3, **window})),
        ("anomalies", AnomaliesArgs(status="open", severity=None, since=None, limit=3)),
        ("budgets", BudgetsArgs(status=None)),
        ("recommendations", RecommendationsArgs(status="open", limit=3)),
    ]
    runs: list[Run] = []
    for name, args in asks:
        runs.append((name, args.model_dump(mode="json"), await run_tool(ctx, name, args)))
    by_model, by_feature, anomalies, budgets, recs = (r[2].result for r in runs)
    lines = [f"This is a fixed summary of the same queries the assistant uses ({reason})."]
    if by_model is not None:
        lines.append(_period(by_model))
    lines += [text for text in (_drivers(by_model or {}), _drivers(by_feature or {})) if text]
    if anomalies is not None:
        lines.append(_anomalies(anomalies))
    if budgets is not None and (line := _budgets({"budgets": [b for b in budgets["budgets"]
                                                              if b["status"] != "ok"]})):
        lines.append(line)
    actions = [f"{r['title']} (about {money(r['estimated_monthly_savings'])} a month)"
               for r in (recs or {}).get("recommendations", []) if r.get("estimated_monthly_savings") is not None]
    return " ".join(lines), actions, runs
