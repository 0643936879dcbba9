"""`tokentra bench consensus`: the consensus job reviewing N recommendations against the scripted provider
servers, through the real clients, the real ingest function (every call recorded as usage of the
internal organization) and the real database.

The script answers like a panel would, with realistic lengths: half the recommendations agree in round
one, a quarter converge in round two, a quarter stay split for every round (synthesis on the escalation
model, with dissent). Tokens are counted by the servers (about 4 characters a token); cost is read back
from the internal organization's usage rows, priced at insert from the pricing table (list prices of the
default strategy's models). Targets: under $0.05 per recommendation reviewed, 100 in under
two minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from psycopg.types.json import Jsonb
from rich.console import Console
from rich.progress import Progress

from tokentra_cli import admin
from tokentra_cli.functions_server import free_port, start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.settings import Settings, get_settings
from tokentra_dev.testing.llm_servers import Answer, LLMServers, SeenRequest
from tokentra_worker.consensus import review_pending
from tokentra_worker.consensus.prompts import SYNTHESIZER, SYSTEM

__all__ = ["realistic_script", "role_of", "round_of", "run", "seed_recommendations"]

TARGET_COST_USD = 0.05
TARGET_SECONDS_PER_100 = 120.0


def role_of(seen: SeenRequest) -> str:
    """Which agent a request comes from, by its system prompt."""
    if seen.system == SYNTHESIZER:
        return "synthesizer"
    return next((role for role, text in SYSTEM.items() if seen.system == text), "unknown")


def round_of(seen: SeenRequest) -> int:
    found = re.search(r"Round (\d+) of at most", seen.prompt)
    return int(found.group(1)) if found else 0


def _estimate(seen: SeenRequest) -> float:
    found = re.search(r'"estimated_monthly_savings_usd": ([0-9.]+)', seen.prompt)
    return float(found.group(1)) if found else 1000.0


_SAY = {
    ("savings_estimate", "supports"): "The savings follow from the evidence: the same tokens repriced at the target "
    "model's listed price, over a month of traffic that is steady from week to week.",
    ("savings_estimate", "challenges"): "The estimate assumes every call moves; calls that need the premium model "
    "for quality would stay, so only part of the estimated savings is realistic.",
    ("quality_risk", "challenges"): "Answer quality on the cheaper model is not measured in the evidence; a share "
    "of the traffic should be compared on a sample before routing all of it.",
    ("implementation_effort", "supports"): "The change is one routing rule that apply creates, with a traffic "
    "share for an A/B start, so the effort is low and reversible.",
    ("data_coverage", "supports"): "The window covers about a month of requests, enough for the weekly pattern "
    "to show in the figures the detector used.",
    ("user_experience", "challenges"): "Users of this feature may notice slower or weaker answers if the target "
    "model handles longer inputs worse than the current one.",
}
_RISKS = ["Quality regressions on the hardest requests of the scope.",
          "Savings lower than estimated if traffic shifts to longer prompts.",
          "A provider outage on the target model would need the fallback rule."]


def _position(verdict: str, savings: float, confidence: float, stances: list[tuple[str, str]]) -> dict:
    return {"verdict": verdict, "adjusted_monthly_savings": round(savings, 2), "confidence": confidence,
            "key_points": [{"topic": t, "stance": s, "text": _SAY[(t, s)]} for t, s in stances],
            "risks": _RISKS[: 2 if verdict == "accept" else 3]}


_AGREE = [("savings_estimate", "supports"), ("implementation_effort", "supports"), ("data_coverage", "supports"),
          ("quality_risk", "challenges")]
_DOUBT = [("savings_estimate", "challenges"), ("quality_risk", "challenges"), ("user_experience", "challenges")]


def _panel(scenario: str, role: str, rnd: int, est: float) -> dict:
    split = scenario == "split" or (scenario == "converge" and rnd == 1)
    if not split:
        share = {"analyst": 1.0, "skeptic": 0.9, "advocate": 0.95}[role]
        return _position("accept", est * share, 0.85, _AGREE)
    return {
        "analyst": _position("accept", est, 0.8, _AGREE),
        "skeptic": _position("reject", est * 0.3, 0.7, _DOUBT),
        "advocate": _position("modify", est * 0.6, 0.65, _DOUBT[:2] + _AGREE[1:2]),
    }[role]


def _synthesis(scenario: str) -> dict:
    split = scenario == "split"
    return {
        "verdict": "modify" if split else "accept",
        "description": "Route the scope's simple calls to the cheaper model through the suggested rule, starting "
        "on a share of the traffic and comparing answer quality before moving all of it. The panel "
        + ("disagreed on how much of the traffic can move, so the advocate's lower estimate is adopted."
           if split else "agreed that the savings follow from the evidence."),
        "confidence": 0.6 if split else 0.85,
        "savings_source": "advocate" if split else "skeptic",
        "caveats": ["Compare answer quality on a sample before routing all traffic.",
                    "Watch the scope's cost per request for a week after applying."],
        "dissent": [{"role": "skeptic", "summary": "Holds that quality on the cheaper model is unproven and the "
                     "savings overstated."}] if split else [],
    }


def realistic_script() -> Callable[[SeenRequest], Answer]:
    """A panel's answers, the scenario chosen by the recommendation (its title's hash), deterministic."""

    def script(seen: SeenRequest) -> Answer:
        title = re.search(r'"title": "([^"]*)"', seen.prompt)
        bucket = hashlib.sha256((title.group(1) if title else "").encode()).digest()[0] % 4
        scenario = "agree" if bucket < 2 else "converge" if bucket == 2 else "split"
        role = role_of(seen)
        if role == "synthesizer":
            return Answer.json(_synthesis(scenario))
        return Answer.json(_panel(scenario, role, round_of(seen), _estimate(seen)))

    return script


_MODELS = [("gpt-4o", "gpt-4o-mini", "classification"), ("claude-sonnet-4-20250514", "claude-3-5-haiku-latest",
                                                          "summarization"), ("gpt-4-turbo", "gpt-4o", "chat")]


def seed_recommendations(conn: Any, org_id: str, n: int) -> list[str]:
    """n open recommendations shaped like the task-aware routing detector's, each over $1,000 a month."""
    ids = []
    for i in range(n):
        model, target, task = _MODELS[i % len(_MODELS)]
        feature = f"feature-{i}"
        current = 2000 + 137 * i
        projected = round(current * 0.22, 4)
        requests = 40_000 + 911 * i
        evidence = {"requests": requests, "cost_per_request": round(current / requests, 6), "task_type": task,
                    "model": model, "provider": "openai" if model.startswith("gpt") else "anthropic",
                    "target_model": target, "input_tokens": requests * 900, "output_tokens": requests * 120,
                    "scope": {"feature": feature}, "window_days": 30.0}
        row = conn.execute(
            "insert into public.recommendations (org_id, category, scope_type, scope_value, fingerprint, title,"
            " description, current_monthly_cost, projected_monthly_cost, estimated_monthly_savings, savings_method,"
            " confidence, priority, risk, effort, implementation_steps, evidence, suggested_rule)"
            " values (%(org)s, 'task_aware_routing', 'feature', %(feature)s, %(fp)s, %(title)s, %(description)s,"
            " %(current)s, %(projected)s, %(savings)s, %(method)s, 0.8, 'critical', 'medium', 'low', %(steps)s,"
            " %(evidence)s, %(rule)s) returning id",
            {"org": org_id, "feature": feature, "fp": f"bench:{i}",
             "title": f"Route {task} calls of feature {feature} from {model} to {target}",
             "description": f"{requests:,} {task} calls of feature `{feature}` in 30 days ran on {model}; {task} "
             f"is a budget-tier task that {target} handles, at 22% of the cost.",
             "current": current, "projected": projected, "savings": current - projected,
             "method": "the same input, cached and output tokens repriced at the target model's listed price "
             "(pricing table)",
             "steps": Jsonb([f"Route feature {feature} task {task} to {target} (apply creates the rule).",
                             "Start on a traffic share and compare quality scores before going to 100%."]),
             "evidence": Jsonb(evidence),
             "rule": Jsonb({"conditions": {"feature": feature, "task_type": task, "model": model},
                            "action": {"type": "route_to_model", "model": target}})},
        ).fetchone()
        ids.append(str(row["id"]))
    return ids


def _figures(dsn: str, org_id: str, n: int, wall: float) -> dict:
    with connect(dsn) as conn:
        # Cost at list prices as our pricing table has it: the internal organization's usage rows of the calls.
        runs = conn.execute(
            "select x.status, x.rounds, x.calls, x.input_tokens, x.output_tokens, x.cost_usd::float8 as cost,"
            " coalesce(p.priced, 0)::float8 as priced from public.consensus_runs x left join ("
            "   select c.run_id, sum(u.cost_usd) as priced from public.consensus_calls c join public.usage_records u"
            "     on u.request_id = c.request_id and u.org_id = private.internal_org_id()"
            "   where c.org_id = %(org)s group by c.run_id) p on p.run_id = x.id"
            " where x.org_id = %(org)s", {"org": org_id}).fetchall()
        models = conn.execute(
            "select c.provider || ':' || c.model as model, count(*) as calls, sum(c.input_tokens) as input_tokens,"
            " sum(c.output_tokens) as output_tokens, round(sum(c.cost_usd), 6)::float8 as cost_usd"
            " from public.consensus_calls c where c.org_id = %s group by 1 order by 1", (org_id,)).fetchall()
    k = max(len(runs), 1)
    costs = sorted(r["priced"] for r in runs)
    return {
        "recommendations": n, "reviewed": len(runs),
        "completed": sum(r["status"] == "completed" for r in runs),
        "rounds_per_run": round(sum(r["rounds"] for r in runs) / k, 2),
        "calls_per_run": round(sum(r["calls"] for r in runs) / k, 2),
        "input_tokens_per_run": round(sum(r["input_tokens"] for r in runs) / k),
        "output_tokens_per_run": round(sum(r["output_tokens"] for r in runs) / k),
        "cost_per_run_usd": round(sum(costs) / k, 6),
        "max_cost_per_run_usd": round(costs[-1], 6) if costs else 0.0,
        "stored_cost_usd": round(sum(r["cost"] for r in runs), 6),
        "priced_cost_usd": round(sum(costs), 6),
        "wall_seconds": round(wall, 2),
        "seconds_per_100": round(wall / max(n, 1) * 100, 2),
        "by_model": [dict(m) for m in models],
        "targets": {"cost_per_run_under_usd": TARGET_COST_USD, "seconds_per_100_under": TARGET_SECONDS_PER_100},
    }


def run(n: int = 100, as_json: bool = False, functions_url: str | None = None, console: Console | None = None,
        keep: bool = False) -> dict:
    """Review n fresh recommendations of a new organization; print and return the figures. The organization
    is deleted afterwards unless `keep` (the internal organization's usage rows of its calls stay)."""
    console = console or Console()
    dsn = get_settings().dsn
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"bench-consensus-{uuid.uuid4().hex[:8]}")
        conn.execute("update public.billing_profiles set ai_monthly_cap_usd = 1000 where org_id = %s", (org.id,))
        seed_recommendations(conn, str(org.id), n)
    proc = None
    if functions_url is None:
        proc, functions_url = start_functions(free_port(), env={"DATABASE_URL": dsn})
    try:
        with LLMServers(realistic_script()) as servers:
            settings = Settings(**servers.env(), llm_ingest_url=f"{functions_url}/ingest", consensus_max_per_run=n)
            started = time.perf_counter()
            with Progress(console=console, disable=as_json) as bar:
                task = bar.add_task("reviewing", total=n)
                summary = asyncio.run(review_pending(dsn, settings, org=str(org.id), limit=n,
                                                     progress=lambda _review: bar.advance(task)))
            wall = time.perf_counter() - started
    finally:
        if proc is not None:
            stop_functions(proc)
    out = {**_figures(dsn, str(org.id), n, wall), "organization": str(org.id), "summary": summary.line()}
    if not keep:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("delete from public.organizations where id = %s", (org.id,))
    if as_json:
        print(json.dumps(out))
    else:
        _print(console, out)
    return out


def _print(console: Console, out: dict) -> None:
    ok_cost = out["cost_per_run_usd"] < TARGET_COST_USD
    ok_time = out["seconds_per_100"] < TARGET_SECONDS_PER_100
    console.print(out["summary"])
    console.print(f"per run: {out['rounds_per_run']} rounds, {out['calls_per_run']} calls, "
                  f"{out['input_tokens_per_run']:,} input + {out['output_tokens_per_run']:,} output tokens, "
                  f"${out['cost_per_run_usd']:.4f} (max ${out['max_cost_per_run_usd']:.4f}) at list prices "
                  f"[{'ok' if ok_cost else 'OVER'}: target < ${TARGET_COST_USD}]")
    for m in out["by_model"]:
        console.print(f"  {m['model']}: {m['calls']} calls, {m['input_tokens']:,} in, {m['output_tokens']:,} out, "
                      f"${m['cost_usd']:.4f}")
    console.print(f"{out['reviewed']} reviewed in {out['wall_seconds']} s ({out['seconds_per_100']} s per 100) "
                  f"[{'ok' if ok_time else 'OVER'}: target < {TARGET_SECONDS_PER_100:.0f} s per 100]")
