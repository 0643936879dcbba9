"""The LLM writes the prose, the evidence holds the figures: an answer citing a number the evidence
lacks is rejected and asked for again once, naming the numbers; a second such answer, an LLM that is
off, capped or failing, all end in the template text."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tokentra_core.grounding import Evidence, unsupported_numbers
from tokentra_core.llm import LLM, AICapReached, LLMCall, LLMOff, StructuredOutputFailed
from tokentra_worker.explanations.templates import Prose, anomaly_text, recommendation_text

__all__ = ["SYSTEM", "Template", "Written", "write"]

log = logging.getLogger("tokentra.worker.explanations")

_RULES = """
Rules, all of them strict:
- Every number you write must appear in the evidence. Copy it, or round it (1234.5678 may be written
  $1,234.57 or $1.2k); never compute a new number, sum, difference, ratio or percentage yourself. The
  evidence already gives the percentages and ratios you may cite (fields ending in _pct, rates, shares).
- Dates and times are UTC, exactly as the evidence gives them (e.g. 2026-11-22 13:00 UTC).
- Write names (models, features, teams, API keys) exactly as the evidence spells them.
- Say nothing the evidence does not support; no advice beyond it. Plain words, no markdown.
Answer with a headline (one sentence with the main figure) and a body (two to five sentences)."""

SYSTEM = {
    "anomaly": (
        "You explain a cost anomaly to the engineers and finance people of the organization it happened in. "
        "The evidence (JSON) was computed from their usage and is correct: `anomaly` is the incident as the "
        "detector saw it (per-bucket expected and actual values of its metric); `usage` compares the anomaly "
        "window with the baseline (the same clock window on earlier days or weeks, averaged); "
        "`cost_change_split` splits the change in cost into volume (more or fewer calls), mix (calls moving "
        "between models of different cost) and rate (cost per call within the same model: longer prompts or "
        "answers, price changes); `cost_change_by` gives the change by model, feature, team, project and API "
        "key. Say what changed, by how much, and where it came from." + _RULES
    ),
    "recommendation": (
        "You explain a cost-saving recommendation to the engineers and finance people of an organization. "
        "The evidence (JSON) was computed from their usage and is correct: `recommendation` has the current "
        "and projected monthly cost, the estimated savings, how they were estimated and the confidence; "
        "`facts` are the figures the detector found. Say what to change, what it saves, and why the estimate "
        "holds." + _RULES
    ),
}
Template = Callable[[dict[str, Any]], Prose]
TEMPLATES: dict[str, Template] = {"anomaly": anomaly_text, "recommendation": recommendation_text}


@dataclass
class Written:
    """An explanation ready to store: the prose, where it came from and what it cost."""

    prose: Prose
    source: str  # "llm" | "template"
    fallback_reason: str | None = None  # llm_off | ai_cap_reached | ungrounded | llm_failed
    note: str | None = None
    calls: list[LLMCall] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_call(self) -> LLMCall | None:
        """The call whose answer was kept, or the last one made."""
        return next((c for c in reversed(self.calls) if c.ok), self.calls[-1] if self.calls else None)


def _template(template: Template, evidence: dict, reason: str, note: str, written: Written) -> Written:
    written.prose = template(evidence)
    written.source, written.fallback_reason, written.note = "template", reason, note[:500]
    return written


async def write(llm: LLM, subject: str, evidence: dict[str, Any], org_id: str, *, task: str | None = None,
                system: str | None = None, template: Template | None = None) -> Written:
    """The explanation of one anomaly or recommendation ("anomaly" | "recommendation") from its evidence;
    other prose grounded the same way (a weekly report) names its task, system prompt and template.

    Not safe to run concurrently on one LLM instance: the calls of this explanation are the instance's
    calls made while it runs."""
    task = task or f"explain.{subject}"
    system = system or SYSTEM[subject]
    template = template or TEMPLATES[subject]
    grounds = Evidence.of(evidence)
    base = "Evidence:\n" + json.dumps(evidence, sort_keys=True, separators=(",", ":"))
    prompt = base
    done = Written(prose=Prose(headline="-", body="-"), source="template")
    for attempt in (1, 2):
        before = len(llm.calls)
        try:
            prose, call = await llm.structured(task, Prose, org_id=org_id, system=system, prompt=prompt)
        except LLMOff as exc:
            return _template(template, evidence, "llm_off", str(exc), done)
        except AICapReached as exc:
            done.calls += llm.calls[before:]
            return _template(template, evidence, "ai_cap_reached", str(exc), done)
        except StructuredOutputFailed as exc:
            done.calls += llm.calls[before:]
            return _template(template, evidence, "llm_failed", str(exc), done)
        except Exception as exc:  # noqa: BLE001 - whatever breaks, a deterministic explanation still exists
            log.warning("%s failed: %s", task, type(exc).__name__)
            done.calls += llm.calls[before:]
            return _template(template, evidence, "llm_failed", f"{type(exc).__name__}", done)
        done.calls += llm.calls[before:]
        unsupported = unsupported_numbers(f"{prose.headline}\n{prose.body}", grounds)
        if not unsupported:
            done.prose, done.source = prose, "llm"
            return done
        done.rejected.append({"attempt": attempt, "model": call.model, "unsupported": unsupported,
                              "headline": prose.headline, "body": prose.body})
        prompt = (f"{base}\n\nYour previous answer cited numbers that are not in the evidence: "
                  f"{', '.join(unsupported)}. Write the explanation again, citing only figures that appear in "
                  f"the evidence (rounding is fine); do not compute new ones.")
    return _template(template, evidence, "ungrounded",
                     "the model cited numbers absent from the evidence twice; the template was stored", done)
