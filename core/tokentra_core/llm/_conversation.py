"""A tool conversation: the model calls the caller's tools until it calls `answer`, on the task's models,
every turn recorded and capped like a structured answer.

The model sees only the tools it is given plus `answer` (whose arguments are the answer schema); it must
call one of them each turn (tool_choice required/any). A turn is malformed when it calls no tool, a tool
outside the set, or a tool with arguments that do not validate: the model is told which and why (as the
tool's error result, never by running anything); a model malformed twice hands over to the task's next
model, which starts afresh, as it does on a provider error. An answer the caller's `review` refuses (for
example a number absent from the tool results) goes back to the model with the reason, `reviews` times;
then the conversation ends without an answer and the caller decides what stands in for it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

from tokentra_core.llm._ask import Ask, org_uuid
from tokentra_core.llm._providers import ProviderFailed, ToolSpec, ToolUse
from tokentra_core.llm._types import LLMCall, LLMOff, LLMUnavailable, StructuredOutputFailed
from tokentra_core.llm.strategy import ModelRef
from tokentra_core.llm_status import HOW_TO_TURN_ON

if TYPE_CHECKING:
    from tokentra_core.llm.client import LLM

__all__ = ["ANSWER_TOOL", "Conversation", "Review", "RunTool", "ToolOutput", "ToolRun", "converse"]

T = TypeVar("T", bound=BaseModel)
ANSWER_TOOL = "answer"
MAX_CALLS_PER_TURN = 8  # tool runs one turn may ask for; more are refused unrun (each is a query)


@dataclass(frozen=True)
class ToolOutput:
    """What a tool gave: the text the model reads, what the caller keeps of it, and whether it failed."""

    content: str
    data: Any = None
    error: bool = False


@dataclass(frozen=True)
class ToolRun:
    name: str
    args: BaseModel
    output: ToolOutput


RunTool = Callable[[str, BaseModel], Awaitable[ToolOutput]]
# The caller's check of an answer against the tool runs of its conversation: None, or what is wrong.
Review = Callable[[T, list[ToolRun]], str | None]


@dataclass
class Conversation(Generic[T]):
    """How a conversation ended: the answer (None when the review refused it to the end, or the model ran
    out of turns), the tool runs of the conversation that answered, every call made, refused answers."""

    answer: T | None
    runs: list[ToolRun]
    calls: list[LLMCall]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # "rejected" | "steps" when there is no answer


def _parse(use: ToolUse, specs: dict[str, ToolSpec]) -> BaseModel | str:
    """The call's validated arguments, or what to tell the model about the call."""
    spec = specs.get(use.name)
    if spec is None:
        return f"there is no tool {use.name!r}; the tools are {', '.join(sorted(specs))}. Nothing was run."
    if not isinstance(use.arguments, dict):
        return f"the arguments of {use.name} are not a JSON object. Nothing was run."
    try:
        return spec.args.model_validate(use.arguments)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                            for e in exc.errors()[:8])
        return f"the arguments of {use.name} do not match its schema: {reasons}. Nothing was run."


async def _turn(uses: Sequence[ToolUse], specs: dict[str, ToolSpec], run: RunTool, runs: list[ToolRun]
                ) -> tuple[list[tuple[str, str, bool]], list[str], tuple[ToolUse, Any] | None]:
    """Run a turn's valid data tool calls (in order); the results to send back (id, content, is_error),
    what was malformed, and the answer call if it made one."""
    results: list[tuple[str, str, bool]] = []
    bad: list[str] = []
    answered: tuple[ToolUse, Any] | None = None
    for n, use in enumerate(uses):
        parsed = _parse(use, specs)
        if n >= MAX_CALLS_PER_TURN and not isinstance(parsed, str) and use.name != ANSWER_TOOL:
            results.append((use.id, f"not run: at most {MAX_CALLS_PER_TURN} tool calls a turn", True))
        elif isinstance(parsed, str):
            bad.append(parsed)
            results.append((use.id, parsed, True))
        elif use.name == ANSWER_TOOL:
            answered = (use, parsed)
        else:
            output = await run(use.name, parsed)
            runs.append(ToolRun(use.name, parsed, output))
            results.append((use.id, output.content, output.error))
    return results, bad, answered


@dataclass
class _Talk(Generic[T]):
    """What one conversation shares across its models."""

    llm: LLM
    ask: Ask
    answer: type[T]
    specs: dict[str, ToolSpec]
    tools_chars: int
    run: RunTool
    review: Review[T] | None
    max_steps: int
    reviews: int
    made: list[LLMCall] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


async def _with_model(talk: _Talk[T], ref: ModelRef, fallback: bool) -> Conversation[T] | str | None:
    """The conversation on one model: how it ended, or (a str) why the model was malformed twice, or None
    when the provider failed."""
    llm = talk.llm
    provider = llm._providers[ref.provider]
    messages = provider.first_messages(talk.ask.prompt)
    runs: list[ToolRun] = []
    malformed = refused = 0
    for _ in range(talk.max_steps):
        await llm._check_cap(talk.ask, ref, talk.tools_chars + len(json.dumps(messages, default=str)))
        try:
            reply = await llm._call(talk.ask, ref, fallback, provider, messages, talk.made, list(talk.specs.values()))
        except ProviderFailed:
            return None
        results, bad, answered = await _turn(reply.tool_calls, talk.specs, talk.run, runs)
        note = None if reply.tool_calls else \
            f"Answer by calling one of the tools ({', '.join(talk.specs)}); prose alone is not read."
        if note:
            bad.append("no tool called")
        if bad:
            talk.made[-1] = llm._amend(talk.made[-1], f"malformed: {'; '.join(bad)}")
            malformed += 1
            if malformed >= 2:
                return f"{ref}: {bad[0]}"
            if answered is not None:
                results.append((answered[0].id, "Not accepted: fix the other calls of this turn first.", True))
        elif answered is not None:
            value = cast(T, answered[1])
            problem = talk.review(value, runs) if talk.review else None
            if problem is None:
                return Conversation(value, runs, talk.made, talk.rejected)
            talk.rejected.append({"model": str(ref), "answer": value.model_dump(mode="json"), "problem": problem})
            refused += 1
            if refused > talk.reviews:
                return Conversation(None, runs, talk.made, talk.rejected, "rejected")
            results.append((answered[0].id, f"This answer was not accepted: {problem}", True))
        messages = provider.tool_messages(messages, reply, results, note)
    return Conversation(None, runs, talk.made, talk.rejected, "steps")


async def converse(llm: LLM, task: str, answer: type[T], *, org_id: str, system: str, prompt: str,
                   tools: Sequence[ToolSpec], run: RunTool, review: Review[T] | None = None,
                   max_steps: int = 6, reviews: int = 1) -> Conversation[T]:
    """Converse until an accepted answer, the end of the refusals or of the turns.

    Raises LLMOff, AICapReached, StructuredOutputFailed (every model malformed twice) or LLMUnavailable."""
    org_id = org_uuid(org_id)
    if any(t.name == ANSWER_TOOL for t in tools):
        raise ValueError(f"tools: {ANSWER_TOOL!r} is reserved for the final answer")
    plan = llm.strategy.for_task(task)
    candidates = plan.candidates(False, set(llm._providers))
    if not candidates:
        raise LLMOff(f"LLM features are off for {task}: no {' or '.join(sorted(plan.providers()))} key; "
                     f"{HOW_TO_TURN_ON}")
    final = ToolSpec(ANSWER_TOOL, "Give your final answer. Call it alone, once the other tools told you enough.",
                     answer)
    talk = _Talk(llm, Ask(task, org_id, answer, system, prompt, plan, routed_from=candidates[0][0]), answer,
                 {t.name: t for t in (*tools, final)},
                 sum(len(t.description) + len(json.dumps(t.args.model_json_schema())) for t in tools),
                 run, review, max_steps, reviews)
    problems: list[str] = []
    for ref, fallback in candidates:
        ended = await _with_model(talk, ref, fallback)
        if isinstance(ended, Conversation):
            return ended
        if isinstance(ended, str):
            problems.append(ended)
    if problems:
        raise StructuredOutputFailed(f"{task}: the model kept calling tools wrongly ({'; '.join(problems)})",
                                     talk.made)
    raise LLMUnavailable(f"{task}: every model failed ({', '.join(c.error or '' for c in talk.made)})", talk.made)
