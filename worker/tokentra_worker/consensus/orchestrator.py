"""One consensus run: analyst, skeptic and user advocate answer in parallel each round, each seeing the
earlier rounds; the debate stops at the stop score or after the last round; the synthesizer writes the
final word (on the escalation model when the panel did not agree).

The outcome carries every provider call the run made, failed ones included, with the round it belongs to,
so what is stored equals what was spent. Nothing is written here: the job stores the outcome in one
transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tokentra_core.llm import LLM, AICapReached, LLMCall, LLMOff, StructuredOutputFailed
from tokentra_worker.consensus.models import ROLES, Position, Role, Synthesis
from tokentra_worker.consensus.prompts import SYNTHESIZER, SYSTEM, agent_prompt, synthesis_prompt
from tokentra_worker.consensus.score import Score, consensus_score

__all__ = ["Outcome", "Round", "debate"]

log = logging.getLogger("tokentra.worker.consensus")


@dataclass
class Round:
    number: int
    positions: dict[Role, Position]
    answered_by: dict[Role, LLMCall]
    score: Score


@dataclass
class Outcome:
    status: str = "completed"  # completed | failed | stopped
    stop_reason: str | None = None
    rounds: list[Round] = field(default_factory=list)
    synthesis: Synthesis | None = None
    calls: list[tuple[int | None, LLMCall]] = field(default_factory=list)  # (round, call); None: synthesis

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for _, c in self.calls)

    @property
    def tokens(self) -> tuple[int, int]:
        return sum(c.input_tokens for _, c in self.calls), sum(c.output_tokens for _, c in self.calls)

    def as_result(self) -> dict[str, Any]:
        """The JSON private.finish_consensus_run stores."""
        return {
            "status": self.status,
            "stop_reason": self.stop_reason,
            "rounds": [
                {
                    "round": r.number,
                    "score": r.score.value,
                    "verdict_agreement": r.score.verdict_agreement,
                    "savings_agreement": r.score.savings_agreement,
                    "key_point_overlap": r.score.key_point_overlap,
                    "positions": [
                        {
                            "role": role,
                            "provider": r.answered_by[role].provider,
                            "model": r.answered_by[role].model,
                            "request_id": r.answered_by[role].request_id,
                            "fallback_used": r.answered_by[role].fallback_used,
                            **p.model_dump(mode="json"),
                        }
                        for role, p in r.positions.items()
                    ],
                }
                for r in self.rounds
            ],
            "calls": [
                {"seq": i, "round": n, **{k: getattr(c, k) for k in c.__dataclass_fields__}}
                for i, (n, c) in enumerate(self.calls, start=1)
            ],
            "synthesis": self.synthesis.model_dump(mode="json") if self.synthesis else None,
        }


def _bounded(p: Position, evidence: dict[str, Any]) -> Position:
    # An agent cannot save more than the scope costs; a figure above it is capped, not trusted.
    cost = evidence.get("current_monthly_cost_usd")
    if cost is not None and p.adjusted_monthly_savings > float(cost):
        return p.model_copy(update={"adjusted_monthly_savings": float(cost)})
    return p


async def debate(llm: LLM, org_id: str, evidence: dict[str, Any], *, max_rounds: int,
                 stop_score: float) -> Outcome:
    """Run the debate for one recommendation's evidence; never raises for a provider's or an answer's fault."""
    out = Outcome()
    history: list[dict[Role, Position]] = []
    mark = len(llm.calls)
    phase: int | None = None  # the round under way; None: the synthesis

    def take_calls() -> None:
        nonlocal mark
        out.calls += [(phase, c) for c in llm.calls[mark:]]
        mark = len(llm.calls)

    try:
        for n in range(1, max_rounds + 1):
            phase = n
            prompt = agent_prompt(evidence, history, n, max_rounds)
            answers = await asyncio.gather(
                *(llm.structured(f"consensus.{role}", Position, org_id=org_id, system=SYSTEM[role], prompt=prompt)
                  for role in ROLES),
                return_exceptions=True,
            )
            take_calls()
            answered = _raise_first(answers)
            positions = {role: _bounded(a[0], evidence) for role, a in zip(ROLES, answered, strict=True)}
            calls = {role: a[1] for role, a in zip(ROLES, answered, strict=True)}
            score = consensus_score(list(positions.values()))
            out.rounds.append(Round(n, positions, calls, score))
            history.append(positions)
            if score.value >= stop_score:
                break
        phase = None
        last = out.rounds[-1].score.value
        out.synthesis, _ = await llm.structured(
            "consensus.synthesizer", Synthesis, org_id=org_id, system=SYNTHESIZER,
            prompt=synthesis_prompt(evidence, history, last, stop_score),
            escalate=last < stop_score,  # no consensus: the stronger model writes the final word
        )
        take_calls()
    except AICapReached as exc:
        take_calls()
        out.status, out.stop_reason = "stopped", f"AI spend cap reached: {exc}"
    except (StructuredOutputFailed, LLMOff) as exc:
        take_calls()
        out.status, out.stop_reason = "failed", f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug or an unforeseen client error must not leave the run half-done
        log.warning("consensus run failed: %s", type(exc).__name__)
        take_calls()
        out.status, out.stop_reason = "failed", f"{type(exc).__name__}: {exc}"[:500]
    if out.status != "completed":
        out.synthesis = None
    return out


T = TypeVar("T")


def _raise_first(answers: Sequence[T | BaseException]) -> list[T]:
    """Re-raise a failed agent's error after the round's other calls finished (the cap comes first);
    without one, the answers."""
    errors = [a for a in answers if isinstance(a, BaseException)]
    for exc in errors:
        if isinstance(exc, AICapReached):
            raise exc
    if errors:
        raise errors[0]
    return [a for a in answers if not isinstance(a, BaseException)]
