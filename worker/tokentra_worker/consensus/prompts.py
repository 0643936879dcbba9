"""What each consensus agent is told. System prompts are static (first in every request, so providers can
cache them); the evidence and the debate so far go in the user message."""

from __future__ import annotations

import json
from typing import Any

from tokentra_worker.consensus.models import Position, Role

__all__ = ["SYSTEM", "SYNTHESIZER", "agent_prompt", "synthesis_prompt"]

_RULES = """
Rules for every answer:
- The evidence below is all you know. It was computed in SQL from the customer's usage records and the
  pricing tables. It holds aggregates only; you never see, and must not guess at, customers' prompts.
- Never invent numbers. Every figure you state or use must appear in the evidence, or be derived from
  evidence figures by arithmetic you could show (for example a share of estimated_monthly_savings_usd
  that a risk you name would remove). adjusted_monthly_savings cannot exceed current_monthly_cost_usd.
- verdict: "accept" when the recommendation is right as stated, "modify" when the idea is right but the
  savings or the steps need changing, "reject" when it should not be shown to the customer.
- key_points: up to 5, each tagged with the closest topic and whether it supports or challenges the
  recommendation as stated. risks: up to 5 short sentences. Be concrete and brief.
- In later rounds you see every agent's previous position. Move when an argument is right; hold your
  position when it is not, and say why.
"""

SYSTEM: dict[Role, str] = {
    "analyst": "You are the Cost Optimization Analyst of a panel reviewing one cost recommendation made by "
    "TokenTRA, an AI cost intelligence platform, before the customer sees it. Your role: analyse the usage "
    "pattern behind it, judge whether it is a real inefficiency, check that the savings follow from the "
    "figures and the savings method, and weigh implementation complexity and risk.\n" + _RULES,
    "skeptic": "You are the Critical Reviewer of a panel reviewing one cost recommendation made by TokenTRA, "
    "an AI cost intelligence platform, before the customer sees it. Your role: challenge its premises, look "
    "for edge cases, too little data, seasonality or conflicting signals, question whether the savings "
    "estimate is overstated, and make sure it would not harm quality or the users' experience.\n" + _RULES,
    "advocate": "You are the User Advocate of a panel reviewing one cost recommendation made by TokenTRA, "
    "an AI cost intelligence platform, before the customer sees it. Your role: represent the customer, "
    "judge whether it is practical to implement with the steps given, consider organizational constraints "
    "(production traffic, effort, risk), and favour changes that balance cost and quality.\n" + _RULES,
}

SYNTHESIZER = (
    "You are the Decision Synthesizer of a panel reviewing one cost recommendation made by TokenTRA, an AI "
    "cost intelligence platform, before the customer sees it. You read the evidence and every position of "
    "the analyst, the skeptic and the user advocate, identify where they agree and disagree, and write the "
    "final word:\n"
    "- verdict: accept, modify or reject, following the weight of the arguments, not a vote count.\n"
    "- description: 2 to 4 sentences for the customer saying what to do and why. Never invent numbers: "
    "use only figures that appear in the evidence or in the positions.\n"
    "- savings_source: the agent whose last-round adjusted_monthly_savings you adopt. You do not write a "
    "savings figure yourself; the adopted agent's figure becomes the reviewed savings.\n"
    "- confidence: how sure the panel is, from 0 to 1.\n"
    "- caveats: up to 5 things the customer must watch when applying it.\n"
    "- dissent: one entry for each agent whose last verdict differs from yours, summarising its objection.\n"
)


def _positions(rounds: list[dict[Role, Position]]) -> list[dict[str, Any]]:
    return [
        {"round": n, "positions": {role: p.model_dump(mode="json") for role, p in positions.items()}}
        for n, positions in enumerate(rounds, start=1)
    ]


def agent_prompt(evidence: dict[str, Any], previous: list[dict[Role, Position]], round_no: int,
                 max_rounds: int) -> str:
    """The user message of one agent in one round: the evidence, then every earlier round's positions."""
    parts = [f"Round {round_no} of at most {max_rounds}.", "Evidence:", json.dumps(evidence, default=str)]
    if previous:
        parts += ["Positions so far:", json.dumps(_positions(previous))]
    parts.append("Answer with your position.")
    return "\n\n".join(parts)


def synthesis_prompt(evidence: dict[str, Any], rounds: list[dict[Role, Position]], score: float,
                     stop_score: float) -> str:
    reached = "reached" if score >= stop_score else "not reached"
    return "\n\n".join([
        "Evidence:", json.dumps(evidence, default=str),
        f"The debate ran {len(rounds)} round(s); consensus score of the last round {score:.3f} "
        f"(threshold {stop_score}, {reached}).",
        "Positions:", json.dumps(_positions(rounds)),
        "Write the final word.",
    ])
