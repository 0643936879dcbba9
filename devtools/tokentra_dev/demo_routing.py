"""Demo: routing turned on for part of the traffic, and what it saved, measured from usage rows.

The biggest routing recommendation the detectors found in the month (a task on a premium model) is
applied as an experiment on half the traffic, as `apply` in the API does; without one, the same rule is
written by hand. Calls of that feature then go through the real OpenAI client wrapped with
`routing=True`, against the scripted local provider: each end user lands in the treatment or the control
arm for good. A second feature's client routes by strategy (`balanced`, quality floor 0.75) from the
registry. What routing saved is read back from the usage rows (`private.routing_savings`: each routed
call's cost against the asked model's price for the same tokens) and printed beside what the
recommendation had estimated.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table

from tokentra_core.db import connect
from tokentra_dev.testing.llm_servers import Answer, LLMServers

console = Console()
# Prompts the SDK's classifier files under each budget-tier task type (checked before they are sent).
PROMPTS = {
    "faq": ["What is {x}?", "What are the opening hours of {x}?", "How do I reset {x}?"],
    "classification": ["Classify this ticket: {x} stopped working", "Categorize this message about {x}"],
    "sentiment": ["What is the sentiment of this review of {x}: loved it",
                  "Is the tone of this {x} note positive or negative?"],
    "greeting": ["hello", "hi there", "good morning"],
    "data_extraction": ["Extract the fields from this invoice for {x}", "Pull out the dates from the {x} receipt"],
}
THINGS = ["the billing page", "my account", "the mobile app", "an invoice", "the API", "the dashboard"]


def _recommendation(org_id: UUID) -> dict[str, Any] | None:
    with connect() as conn:
        return conn.execute(
            "select id, title, scope_value, suggested_rule, current_monthly_cost, estimated_monthly_savings "
            "from public.recommendations where org_id = %s and status = 'open' "
            "and suggested_rule -> 'action' ->> 'type' = 'route_to_model' "
            "and suggested_rule -> 'conditions' ? 'task_type' "
            "order by estimated_monthly_savings desc nulls last limit 1", (org_id,)).fetchone()


def _apply(org_id: UUID, rec: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The rule the experiment runs: the recommendation's (applied on half the traffic) or a hand-made one."""
    with connect() as conn:
        if rec is not None:
            out = conn.execute("select public.apply_recommendation(%s, 0.5) as r", (rec["id"],)).fetchone()["r"]
            rule = out["routing_rule"]
            conn.commit()
            return rule, f"recommendation {str(rec['id'])[:8]}: {rec['title']}"
        row = conn.execute(
            "insert into public.routing_rules (org_id, name, priority, conditions, action, traffic_share) "
            "values (%s, 'faq on gpt-4o-mini', 50, %s::jsonb, %s::jsonb, 0.5) returning *",
            (org_id, json.dumps({"feature": "help-center", "task_type": "faq", "model": "gpt-4o"}),
             json.dumps({"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"}))).fetchone()
        conn.commit()
        return dict(row), "a hand-written rule (the month found no routing recommendation)"


def _prompts(task: str, n: int, rng: random.Random) -> list[str]:
    import tokentra

    pool = [t.format(x=x) for t in PROMPTS.get(task, PROMPTS["faq"]) for x in THINGS]
    pool = [p for p in pool if tokentra.classify(p) == task] or [p for p in pool]
    return [rng.choice(pool) for _ in range(n)]


def _send(url: str, key: str, rule: dict[str, Any], calls: int, rng: random.Random) -> None:
    import openai

    import tokentra

    conditions = rule.get("conditions") or {}
    feature = conditions.get("feature", "help-center")
    task = conditions.get("task_type", "faq")
    model = conditions.get("model", "gpt-4o")
    answer = Answer.malformed("Sure: here is the short answer you were looking for.")
    with LLMServers(lambda seen: answer) as servers:
        tokentra.configure(api_key=key, url=url)
        raw = openai.OpenAI(api_key=servers.env()["OPENAI_API_KEY"], base_url=servers.openai_base_url,
                            max_retries=0)
        routed = tokentra.wrap(raw, routing=True)
        by_strategy = tokentra.wrap(raw, routing=True, strategy="balanced", quality_floor=0.75)
        if not tokentra.refresh_routing(timeout=60):  # the SDK would fail open; the demo wants the rules
            console.print("[yellow]routing snapshot unavailable: calls go to the asked model[/yellow]")
        users = [f"user-{i}" for i in range(60)]
        for text in _prompts(task, calls, rng):
            routed.chat.completions.create(
                model=model, messages=[{"role": "user", "content": text}],
                tokentra_tags={"feature": feature, "user_id": rng.choice(users), "team": "support"})
        for text in _prompts("classification", calls // 2, rng):
            by_strategy.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": text}],
                tokentra_tags={"feature": "ticket-triage", "user_id": rng.choice(users), "team": "support"})
        tokentra.flush()


def _money(v: Decimal | float | None) -> str:
    return "-" if v is None else f"${float(v):,.4f}"


def show(org_id: UUID, url: str, key: str, calls: int = 240, seed: int = 7) -> None:
    rng = random.Random(seed)
    console.rule("[bold]Routing: on for part of the traffic, measured from usage rows")
    rec = _recommendation(org_id)
    rule, origin = _apply(org_id, rec)
    console.print(f"Experiment on 50% of end users: {origin}")
    console.print(f"  rule {str(rule['id'])[:8]}: when {json.dumps(rule['conditions'])} "
                  f"-> {json.dumps(rule['action'])}")
    _send(url, key, rule, calls, rng)
    with connect() as conn:
        rows = conn.execute("select * from private.routing_savings(%s, now() - interval '1 hour') "
                            "order by routing_rule_id nulls last, routing_arm", (org_id,)).fetchall()
    table = Table(title="Routed calls (from usage rows)")
    for col in ("rule", "arm", "calls", "cost", "asked model's cost", "saved", "saved %"):
        table.add_column(col, justify="left" if col in ("rule", "arm") else "right")
    for r in rows:
        counterfactual = r["counterfactual_cost_usd"] or 0
        share = (r["savings_usd"] / counterfactual) if counterfactual else 0
        table.add_row(str(r["routing_rule_id"])[:8] if r["routing_rule_id"] else "(strategy)", r["routing_arm"],
                      f"{r['requests']:,}", _money(r["cost_usd"]), _money(counterfactual), _money(r["savings_usd"]),
                      f"{share:.0%}")
    console.print(table)
    treatment = next((r for r in rows if r["routing_arm"] == "treatment"), None)
    control = next((r for r in rows if r["routing_arm"] == "control"), None)
    if treatment and control and treatment["requests"] and control["requests"]:
        per_treated = treatment["cost_usd"] / treatment["requests"]
        per_control = control["cost_usd"] / control["requests"]
        console.print(f"Cost per call: treatment ${float(per_treated):.6f}, control ${float(per_control):.6f} "
                      f"({1 - per_treated / per_control:.0%} less with routing)")
    if rec is not None and treatment and treatment["counterfactual_cost_usd"]:
        estimated = (rec["estimated_monthly_savings"] or 0) / (rec["current_monthly_cost"] or 1)
        measured = treatment["savings_usd"] / treatment["counterfactual_cost_usd"]
        console.print(f"The recommendation estimated {_money(rec['estimated_monthly_savings'])} a month "
                      f"({estimated:.0%} of its scope's {_money(rec['current_monthly_cost'])}); routed calls "
                      f"measured {measured:.0%} saved against the asked model's price for the same tokens.")
