"""Scripted answers for `LLMServers` that are valid for the schemas the jobs ask for: explanations and
weekly reports that cite only their evidence, and a panel answering like the consensus benchmark's. Test
fixtures, shared by the explanation tests and the demo's test; never a product code path."""

from __future__ import annotations

import json
from collections.abc import Callable

from tokentra_dev.bench_consensus import realistic_script
from tokentra_dev.testing.llm_servers import Answer, SeenRequest
from tokentra_worker.explanations.writer import SYSTEM as EXPLAIN_SYSTEM
from tokentra_worker.reports import SYSTEM as REPORT_SYSTEM

__all__ = ["evidence_of", "grounded", "grounded_report", "panel_and_writer"]


def evidence_of(seen: SeenRequest) -> dict:
    """The evidence the writer sent (the JSON after 'Evidence:', whatever follows it)."""
    return json.JSONDecoder().raw_decode(seen.prompt.split("Evidence:\n", 1)[1])[0]


def grounded(seen: SeenRequest) -> Answer:
    """An answer citing only evidence figures, some reformatted ($, thousands separators, rounding)."""
    ev = evidence_of(seen)
    if ev["subject"] == "anomaly":
        ch, split = ev["usage"]["change"], ev["cost_change_split"]
        top = ev["cost_change_by"]["model"][0]
        return Answer.json({
            "headline": f"Spend rose {ch['cost_pct']:g}% to ${ev['usage']['window']['cost_usd']:,.2f} in "
                        f"{ev['window']['buckets']} hours.",
            "body": f"Model {top['value']} added ${top['change_usd']:.2f} ({top['share_of_change_pct']}% of the "
                    f"change); more calls explain ${split['volume_usd']}, dearer calls on the same model "
                    f"${split['rate_usd']:.2f}, against the {ev['baseline']['windows']} days before."})
    r = ev["recommendation"]
    return Answer.json({
        "headline": f"Move {r['scope_value']} to a cheaper model and save ${r['estimated_monthly_savings_usd']:,.2f} "
                    f"a month.",
        "body": f"It costs ${r['current_monthly_cost_usd']:,.2f} a month today ({ev['facts']['requests']:,} requests); "
                f"{r['savings_pct']}% of that goes, ${r['estimated_yearly_savings_usd']:,.0f} a year."})


def grounded_report(seen: SeenRequest) -> Answer:
    """A weekly report citing only evidence figures, some reformatted."""
    ev = evidence_of(seen)
    s, drivers = ev["spend"], ev["top_drivers"]["model"]
    body = f"{ev['anomalies']['count']} anomalies started this week."
    if drivers:
        body = f"Model {drivers[0]['value']} moved most (${abs(drivers[0]['change_usd']):,.2f}). " + body
    if ev["recommendations"]["open"]:
        body += (f" {ev['recommendations']['open']} open recommendations could save "
                 f"${ev['recommendations']['open_estimated_monthly_savings_usd']:,.2f} a month.")
    return Answer.json({"headline": f"AI spend was ${s['this_week_usd']:,.2f} in the week of "
                                    f"{ev['period']['start'][:10]}, against ${s['previous_week_usd']:,.2f} before.",
                        "body": body})


def panel_and_writer() -> Callable[[SeenRequest], Answer]:
    """Every job at once: `grounded` for the explanation writer, `grounded_report` for the weekly report, the
    benchmark's realistic panel for the consensus agents and synthesizer (told apart by their system prompts)."""
    panel = realistic_script()
    writers = set(EXPLAIN_SYSTEM.values())

    def answer(seen: SeenRequest) -> Answer:
        if seen.system == REPORT_SYSTEM:
            return grounded_report(seen)
        return grounded(seen) if seen.system in writers else panel(seen)

    return answer
