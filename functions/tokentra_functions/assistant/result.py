"""What the assistant answers, whichever way it was made: the answer, its sources and its cost as JSON,
the grounding check both ways share, and the template answer. Light on imports: the answer without a
model never loads the LLM client libraries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from tokentra_core.grounding import unsupported_numbers
from tokentra_functions.assistant.template import Run, template_answer
from tokentra_functions.assistant.tools import DATE_ARGUMENTS, ToolContext

if TYPE_CHECKING:
    from tokentra_core.llm import LLMCall

__all__ = ["Answered", "dump", "evidence_of", "sources_of", "template_answered", "ungrounded", "usage_of"]


@dataclass
class Answered:
    """An answer ready to send: text, actions, the runs it rests on, where it came from and what it cost."""

    answer: str
    suggested_actions: list[str]
    runs: list[Run]
    source: str  # "llm" | "template"
    fallback_reason: str | None = None  # llm_off | ai_cap_reached | llm_failed | ungrounded
    calls: list[LLMCall] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def evidence_of(runs: list[Run], today: date) -> dict[str, Any]:
    """What an answer may cite: today's date, each tool's result, and of its arguments only the dates (the
    period it asked about). Any other argument is the model's own text: a number or a sentence it passed
    (min_savings=4321.5, a category "Costs fell 97%") would otherwise ground itself."""
    return {"today": str(today),
            "runs": [{"tool": name, "dates": {k: v for k, v in args.items() if k in DATE_ARGUMENTS},
                      "result": result.result} for name, args, result in runs]}


def ungrounded(text: str, runs: list[Run], today: date) -> list[str]:
    """The figures of `text` that neither the runs' results nor their date arguments hold."""
    return unsupported_numbers(text, evidence_of(runs, today))


async def template_answered(ctx: ToolContext, reason: str, calls: list[LLMCall] | None = None) -> Answered:
    """The template answer, with why it stands in (llm_off | ai_cap_reached | llm_failed | ungrounded)."""
    text, actions, runs = await template_answer(ctx, _REASONS[reason])
    return Answered(text, actions, runs, "template", reason, list(calls or []))


_REASONS = {
    "llm_off": "no model provider is configured",
    "ai_cap_reached": "the organization's monthly AI budget is used up",
    "llm_failed": "the model could not answer",
    "ungrounded": "the model's answer cited figures the data does not hold",
}


def sources_of(runs: list[Run]) -> list[dict[str, Any]]:
    """Each query behind the answer: its tool, query, parameters and row count, numbered s1, s2, ..."""
    out: list[dict[str, Any]] = []
    for name, args, result in runs:
        for source in result.sources:
            out.append({"id": f"s{len(out) + 1}", "tool": name, "arguments": args, **source})
    return out


def usage_of(calls: list[LLMCall]) -> dict[str, Any]:
    return {"calls": len(calls), "input_tokens": sum(c.input_tokens for c in calls),
            "output_tokens": sum(c.output_tokens for c in calls),
            "cost_usd": round(sum(c.cost_usd for c in calls), 6)}


def dump(answered: Answered) -> str:
    return json.dumps({"answer": answered.answer, "sources": sources_of(answered.runs),
                       "suggested_actions": answered.suggested_actions, "source": answered.source,
                       "fallback_reason": answered.fallback_reason, "usage": usage_of(answered.calls)},
                      default=str)
