"""The end of `tokentra demo`: the multi-agent review of the demo's biggest recommendation, the
explanation of the planted cost spike, and the AI spend made on the demo organization's behalf.

Nothing here is a demo-only path. The explanations job (`run_explanations`) and the consensus job's
`review_pending` run for the demo organization alone, through the LLM layer, its AI cap and the consensus
triggers: the demo organization is on the enterprise plan, a documented trigger (README "When consensus
runs"), so a recommendation over the $10 floor is reviewed. What is shown is read with the SQL functions
the API answers with (public.recommendation_consensus, public.explanation_of, public.ai_spend). With no
provider key the jobs do what they always do then: no review, and a template explanation."""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from tokentra_core.db import connect
from tokentra_core.llm import llm_status
from tokentra_core.settings import Settings
from tokentra_worker.consensus import Summary, review_pending
from tokentra_worker.consensus.triggers import candidates
from tokentra_worker.explanations import run_explanations

__all__ = ["explain", "show"]

console = Console()
TURN_ON = (
    "To turn it on, set OPENAI_API_KEY and/or ANTHROPIC_API_KEY (OPENAI_BASE_URL / ANTHROPIC_BASE_URL for another "
    "endpoint speaking the same API); the model of each task comes from core/tokentra_core/llm/strategy.toml "
    "(TOKENTRA_LLM_STRATEGY names another file). Then run the demo again."
)
# The explained anomaly most worth showing: the planted cost spike (as print_anomalies ranks incidents).
_SPIKE = """
select a.id, a.metric, a.kind, a.dimension, a.dimension_value, a.window_start, a.window_end
from public.anomalies a join public.explanations x on x.anomaly_id = a.id
where a.org_id = %s
order by (a.metric = 'cost' and a.kind = 'spike') desc, (a.dimension = 'organization' and a.grain = 'hour') desc,
         a.money_involved desc nulls last
limit 1
"""
_WHY = {"llm_off": "no provider key", "ai_cap_reached": "the organization's AI cap is reached",
        "ungrounded": "the model cited numbers absent from the evidence twice", "llm_failed": "the LLM calls failed"}


def _money(v: float | None, places: int = 2) -> str:
    return f"${float(v or 0):,.{places}f}"


def _signed(v: float | None, places: int = 4) -> str:
    return ("-" if float(v or 0) < 0 else "+") + _money(abs(float(v or 0)), places)


def _say(text: str) -> None:
    """An indented paragraph (wrapped lines keep the indent)."""
    console.print(Padding(text, (0, 0, 0, 2), expand=False))


def explain(settings: Settings, org: str, at: datetime) -> str:
    """The explanations job for the demo organization, as its ten-minute schedule would have run it at `at`."""
    return run_explanations(settings.dsn, now=at, orgs=[org], settings=settings)


async def _consensus(settings: Settings, org: str, enabled: bool) -> tuple[list[dict], Summary | None]:
    """The organization's review candidates (the job's own query), and with LLM review on, the review of the
    first of them: the one with the largest savings."""
    async with await psycopg.AsyncConnection.connect(settings.dsn, autocommit=True, row_factory=dict_row,
                                                     prepare_threshold=None) as conn:
        pending = await candidates(conn, settings, org, None)
    if not enabled or not pending:
        return pending, None
    return pending, await review_pending(settings.dsn, settings, org=org, limit=1)


def show(org_id: UUID, settings: Settings) -> None:
    org = str(org_id)
    status = llm_status(settings)
    if status["enabled"]:
        console.print(f"\n[bold]LLM review: on[/bold] ({status['reason']})")
    else:
        console.print("\n[bold]LLM review is off[/bold]: no provider key is configured, so no recommendation is "
                      f"reviewed by the agents and explanations come from templates. {TURN_ON}")
    pending, summary = asyncio.run(_consensus(settings, org, status["enabled"]))
    with connect(settings.dsn) as conn:
        print_consensus(conn, pending, summary)
        print_explanation(conn, org)
        print_ai_spend(conn, org)


def print_consensus(conn, pending: list[dict], summary: Summary | None) -> None:
    if not pending:
        console.print("\n[bold]Consensus review[/bold]: no recommendation qualifies (none over the "
                      "TOKENTRA_CONSENSUS_FLOOR_SAVINGS floor with a trigger, or all already reviewed).")
        return
    if summary is None:
        first = conn.execute("select title, estimated_monthly_savings as savings from public.recommendations "
                             "where id = %s", (pending[0]["recommendation_id"],)).fetchone()
        why = ", ".join(pending[0]["triggers"])
        console.print(f"\n[bold]Consensus review[/bold]: {len(pending)} recommendations qualify; the first would "
                      f"be \"{escape(first['title'])}\" ({_money(first['savings'])} a month; triggers: {why}). None is "
                      "reviewed while LLM review is off.")
        return
    if not summary.reviews:
        why = "its AI cap is reached" if summary.skipped_capped else "another worker is reviewing it"
        console.print(f"\n[bold]Consensus review[/bold]: not started ({why}).")
        return
    record = conn.execute("select public.recommendation_consensus(%s) as r",
                          (summary.reviews[0].recommendation_id,)).fetchone()["r"]
    run = record["runs"][0]  # newest first: the run just made
    title = escape(run["evidence"]["title"])
    console.print(f"\n[bold]Consensus review of the biggest recommendation[/bold]: \"{title}\" "
                  f"({_money(run['reviewed_savings'])} a month; triggers: {', '.join(run['triggers'])})")
    for rnd in run["rounds"]:
        print_round(rnd)
    print_outcome(run, record)
    if len(pending) > 1:
        _say(f"{len(pending) - 1} more recommendations qualify; the hourly `consensus` job reviews them "
                      "(`tokentra worker --once consensus`).")


def print_round(rnd: dict) -> None:
    table = Table(title=f"Round {rnd['round']}: consensus score {rnd['score']:.2f} (verdicts "
                        f"{rnd['verdict_agreement']:.2f}, savings {rnd['savings_agreement']:.2f}, key points "
                        f"{rnd['key_point_overlap']:.2f}; 0.5 V + 0.3 S + 0.2 K)", title_justify="left")
    for col in ("agent", "provider:model", "verdict", "savings/month", "confidence", "tokens in/out", "cost"):
        table.add_column(col, justify="right" if col in ("savings/month", "confidence", "cost") else "left")
    for p in rnd["positions"]:
        table.add_row(p["role"], f"{p['provider']}:{p['model']}" + (" (fallback)" if p["fallback_used"] else ""),
                      p["verdict"], _money(p["adjusted_monthly_savings"]), f"{p['confidence']:.0%}",
                      f"{p['input_tokens']:,}/{p['output_tokens']:,}", _money(p["cost_usd"], 4))
    console.print(table)


def print_outcome(run: dict, record: dict) -> None:
    if run["status"] != "completed":
        _say(f"Review {run['status']}: {escape(run['stop_reason'] or '')}")
    else:
        synth = next((c for c in run["calls"] if c["task"] == "consensus.synthesizer" and c["ok"]), None)
        by = f" ({synth['provider']}:{synth['model']})" if synth else ""
        _say(f"Final verdict{by}: [bold]{run['verdict']}[/bold], confidence {run['confidence']:.0%}, "
                      f"final score {run['score']:.2f}; adopts the {run['savings_source']}'s estimate of "
                      f"{_money(run['adjusted_monthly_savings'])} a month")
        _say(escape(run["description"]))
        for caveat in run["caveats"]:
            _say(f"caveat: {escape(caveat)}")
        for d in run["dissent"]:
            _say(f"dissent ({d['role']}): {escape(d['summary'])}")
        if not run["dissent"]:
            _say("dissent: none")
    _say(f"Review cost: {run['round_count']} rounds, {run['call_count']} calls, "
                  f"{run['input_tokens']:,} input + {run['output_tokens']:,} output tokens, "
                  f"{_money(run['cost_usd'], 4)}; the recommendation is now {record['status']}, confidence "
                  f"{record['confidence']:.0%} (detector: {record['detector_confidence'] or record['confidence']:.0%})")


def print_explanation(conn, org: str) -> None:
    a = conn.execute(_SPIKE, (org,)).fetchone()
    if a is None:
        console.print("\n[bold]Anomaly explanation[/bold]: none (no anomaly was open when the explanations job ran).")
        return
    x = conn.execute("select public.explanation_of(anomaly => %s) as x", (a["id"],)).fetchone()["x"]
    if x["source"] == "llm":
        calls = f"{x['llm_calls']} call" + ("s" if x["llm_calls"] != 1 else "")
        label = (f"written by {x['provider']}:{x['model']} from the evidence, every figure checked against it; "
                 f"{calls}, {x['input_tokens']:,} input + {x['output_tokens']:,} output tokens, "
                 f"{_money(x['cost_usd'], 4)}")
    else:
        why = x["fallback_reason"]
        label = f"a deterministic text built from the evidence; {why}: {_WHY.get(why, why)}"
    where = "the organization" if a["dimension"] == "organization" else f"{a['dimension']} {a['dimension_value']}"
    when = f"{a['window_start']:%a %d %b %H:%M}" + (f"–{a['window_end']:%H:%M}" if a["window_end"] else "")
    console.print(f"\n[bold]Explanation of the {a['metric']} {a['kind'].replace('_', ' ')} of {where}, {when} "
                  f"UTC[/bold] (source: {x['source']}, {label})")
    _say(f"[bold]{escape(x['headline'])}[/bold]")
    _say(escape(x["body"]))
    print_evidence(x["evidence"])


def print_evidence(ev: dict) -> None:
    """The figures the text was grounded on, from SQL (public.anomaly_evidence)."""
    w, b = ev["usage"]["window"], ev["usage"]["baseline"]
    ch, split = ev["usage"]["change"], ev["cost_change_split"]
    _say(f"Evidence: {_money(w.get('cost_usd'), 4)} in the window against {_money(b.get('cost_usd'), 4)} "
                  f"in the baseline (the same hours of {ev['baseline'].get('windows', 0)} earlier days): "
                  f"{_signed(ch.get('cost_usd'))} ({ch.get('cost_pct', 0):+g}%), of which volume "
                  f"{_signed(split.get('volume_usd'))}, mix {_signed(split.get('mix_usd'))}, rate "
                  f"{_signed(split.get('rate_usd'))}")
    table = Table(title="Cost change by dimension (top three and the rest)", title_justify="left")
    for col in ("dimension", "value", "baseline", "window", "change", "share"):
        table.add_column(col, justify="left" if col in ("dimension", "value") else "right")
    for dim in ("model", "feature", "team"):
        for p in ev.get("cost_change_by", {}).get(dim, []):
            table.add_row(dim, p["value"], _money(p["baseline_cost_usd"], 4), _money(p["window_cost_usd"], 4),
                          _signed(p["change_usd"]), f"{p.get('share_of_change_pct', 0):g}%")
    console.print(table)


def print_ai_spend(conn, org: str) -> None:
    s = conn.execute("select * from public.ai_spend(%s)", (org,)).fetchone()
    console.print(f"\n[bold]AI spend on the demo organization's behalf in {s['month_start']:%B %Y}[/bold]: "
                  f"{_money(s['spend_usd'], 4)} in {s['calls']} calls, of its {_money(s['cap_usd'])} monthly cap")
