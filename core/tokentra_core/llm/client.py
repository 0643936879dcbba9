"""The LLM class: one structured answer per call, on the task's models, recorded and capped."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from genai_prices import Usage, calc_price
from pydantic import BaseModel, ValidationError

from tokentra_core.llm import _conversation
from tokentra_core.llm._ask import Ask as _Ask
from tokentra_core.llm._ask import org_uuid as _org
from tokentra_core.llm._conversation import Conversation, Review, RunTool
from tokentra_core.llm._ledger import Ledger, hash_text
from tokentra_core.llm._providers import AnthropicProvider, OpenAIProvider, ProviderFailed, Reply, ToolSpec
from tokentra_core.llm._types import AICapReached, LLMCall, LLMOff, LLMUnavailable, StructuredOutputFailed
from tokentra_core.llm.strategy import ModelRef, load_strategy
from tokentra_core.llm_status import HOW_TO_TURN_ON, configured_providers
from tokentra_core.settings import Settings

__all__ = ["LLM", "price"]

T = TypeVar("T", bound=BaseModel)
log = logging.getLogger("tokentra.llm")
Provider = OpenAIProvider | AnthropicProvider


def price(ref: ModelRef, input_tokens: int, output_tokens: int, cached: int = 0, cache_write: int = 0) -> Decimal:
    """Cost at list price from genai-prices (the numbers the SQL price table is loaded from)."""
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached,
                  cache_write_tokens=cache_write)
    try:
        return calc_price(usage, model_ref=ref.model, provider_id=ref.provider).total_price
    except LookupError:
        log.warning("no price for %s; its calls count as free against AI caps", ref)
        return Decimal(0)


def _validate(schema: type[T], reply: Reply) -> T | str:
    """The answer, or (a str) what to tell the model about it (fields and reasons, as we tell our users)."""
    if reply.obj is None:
        return "the answer is not valid JSON"
    if not isinstance(reply.obj, dict):
        return "the answer is not a JSON object"
    try:
        return schema.model_validate(reply.obj)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                               for e in exc.errors()[:8])


class LLM:
    """TokenTRA's own LLM calls. Safe to share between concurrent tasks of one event loop."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self.settings = settings
        self.strategy = load_strategy(settings.llm_strategy)
        self.calls: list[LLMCall] = []
        self._providers: dict[str, Provider] = {}
        timeout = settings.llm_timeout_seconds
        if settings.openai_api_key is not None and "openai" in configured_providers(settings):
            self._providers["openai"] = OpenAIProvider(
                settings.openai_api_key.get_secret_value(), settings.openai_base_url, timeout)
        if settings.anthropic_api_key is not None and "anthropic" in configured_providers(settings):
            self._providers["anthropic"] = AnthropicProvider(
                settings.anthropic_api_key.get_secret_value(), settings.anthropic_base_url, timeout)
        self._ledger = Ledger(dsn, settings.ingest_url)

    @property
    def enabled(self) -> bool:
        return bool(self._providers)

    async def structured(self, task: str, schema: type[T], *, org_id: str, system: str, prompt: str,
                         escalate: bool = False) -> tuple[T, LLMCall]:
        """The task's answer as a `schema` instance, and the call that produced it.

        Raises LLMOff (no key for the task's models), AICapReached (the org's monthly AI cap),
        StructuredOutputFailed (every model that answered was malformed twice, each after a repair request; a
        model malformed twice hands over to the next, as a failing one does) or LLMUnavailable, a
        StructuredOutputFailed (every model failed at the provider)."""
        org_id = _org(org_id)
        if not task or not task.strip():
            raise ValueError("task: must not be empty")
        plan = self.strategy.for_task(task)
        candidates = plan.candidates(escalate, set(self._providers))
        if not candidates:
            needed = " or ".join(sorted(plan.providers()))
            raise LLMOff(f"LLM features are off for {task}: no {needed} key; {HOW_TO_TURN_ON}")
        ask = _Ask(task, org_id, schema, system, prompt, plan, routed_from=candidates[0][0])
        made: list[LLMCall] = []
        problems: list[str] = []  # per model that answered malformed twice: what was wrong the second time
        for ref, fallback in candidates:
            provider = self._providers[ref.provider]
            messages = provider.first_messages(prompt)
            malformed = 0
            while True:
                await self._check_cap(ask, ref)
                try:
                    reply = await self._call(ask, ref, fallback, provider, messages, made)
                except ProviderFailed:
                    break  # next candidate
                answer = _validate(schema, reply)
                if not isinstance(answer, str):
                    return answer, made[-1]
                problem = answer
                made[-1] = self._amend(made[-1], f"malformed: {problem}")
                malformed += 1
                if malformed >= 2:
                    # A model that cannot keep to the schema after a repair request is treated like one that
                    # errs: the next candidate answers from a fresh conversation.
                    problems.append(f"{ref}: {problem}")
                    break
                messages = provider.repair_messages(messages, reply, _repair_request(problem, schema))
        if problems:
            raise StructuredOutputFailed(
                f"{task}: the answer stayed malformed after a repair request ({'; '.join(problems)})", made)
        raise LLMUnavailable(f"{task}: every model failed ({', '.join(c.error or '' for c in made)})", made)

    async def _check_cap(self, ask: _Ask, ref: ModelRef, extra_chars: int = 0) -> None:
        """Refuse a call that could take the org's spend this month past its cap (its worst case counted);
        `extra_chars`: what the request carries besides the first prompt (a conversation so far, tools)."""
        spend = await self._ledger.spend(ask.org_id)
        request_chars = len(ask.system) + len(ask.prompt) + len(str(ask.schema.model_json_schema())) + extra_chars
        # The prompt twice (a repair resends it) and the whole output allowance, at list price.
        worst = price(ref, math.ceil(request_chars / 4) * 2, ask.plan.max_output_tokens)
        if spend.spend_usd + worst > spend.cap_usd:
            raise AICapReached(
                f"organization {ask.org_id}: AI spend this month ${spend.spend_usd:.4f} plus up to ${worst:.4f} "
                f"for this call would pass the cap of ${spend.cap_usd:.2f} (billing_profiles.ai_monthly_cap_usd)")

    async def _call(self, ask: _Ask, ref: ModelRef, fallback: bool, provider: Provider,
                    messages: list[dict[str, Any]], made: list[LLMCall],
                    tools: list[ToolSpec] | None = None) -> Reply:
        """One provider request (a structured answer, or with `tools` a turn of a tool conversation),
        recorded whatever its outcome; ProviderFailed when there is no answer."""
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        reply: Reply | None = None
        failure: ProviderFailed | None = None
        try:
            if tools is None:
                reply = await provider.ask(ref.model, ask.system, messages, ask.schema, ask.plan.max_output_tokens,
                                           ask.task)
            else:
                reply = await provider.ask_tools(ref.model, ask.system, messages, tools, ask.plan.max_output_tokens,
                                                 ask.task)
        except ProviderFailed as exc:
            failure = exc
        latency = int((time.perf_counter() - started) * 1000)
        tokens = (reply.input_tokens, reply.output_tokens, reply.cached_tokens, reply.cache_write_tokens) \
            if reply else (0, 0, 0, 0)
        cost = price(ref, *tokens) if reply else Decimal(0)
        call = LLMCall(task=ask.task, provider=ref.provider, model=ref.model, request_id=request_id,
                       input_tokens=tokens[0], output_tokens=tokens[1], cached_tokens=tokens[2],
                       cost_usd=float(cost), latency_ms=latency, fallback_used=fallback, ok=reply is not None,
                       error=f"{failure.code}: {failure}" if failure else None)
        made.append(call)
        self.calls.append(call)
        log.info("llm call task=%s model=%s ok=%s tokens=%d/%d cost=%.6f request_id=%s", ask.task, ref, call.ok,
                 call.input_tokens, call.output_tokens, call.cost_usd, request_id)
        event = {
            "request_id": request_id, "provider": ref.provider, "model": ref.model, "endpoint": provider.endpoint,
            "input_tokens": tokens[0], "output_tokens": tokens[1], "cached_tokens": tokens[2],
            "cache_write_tokens": tokens[3], "latency_ms": latency, "cost_usd": str(cost),
            "status": failure.status if failure else "success", "error_code": failure.code if failure else None,
            "is_timeout": bool(failure and failure.status == "timeout"),
            "is_rate_limited": bool(failure and failure.status == "rate_limited"),
            "routed_from_model": ask.routed_from.model if fallback else None, "cache_hit": tokens[2] > 0,
            "prompt_hash": hash_text(prompt_text(messages)), "system_prompt_hash": hash_text(ask.system),
            "task_type": ask.task[:64], "source": "api", "timestamp": datetime.now(UTC).isoformat(),
            "metadata": {"feature": ask.task, "user_id": ask.org_id, "on_behalf_of_org_id": ask.org_id,
                         "fallback_used": fallback, "served_model": reply.served_model if reply else None},
        }
        await self._ledger.record(ask.org_id, cost, event)
        if failure:
            raise failure
        if reply is None:  # unreachable: provider.ask returns a Reply or raises ProviderFailed
            raise ProviderFailed("error", "no_reply", "the provider gave no reply")
        return reply

    async def converse(self, task: str, answer: type[T], *, org_id: str, system: str, prompt: str,
                       tools: Sequence[ToolSpec], run: RunTool, review: Review[T] | None = None,
                       max_steps: int = 6, reviews: int = 1) -> Conversation[T]:
        """A tool conversation ending in an `answer` instance: see _conversation.converse."""
        return await _conversation.converse(self, task, answer, org_id=org_id, system=system, prompt=prompt,
                                            tools=tools, run=run, review=review, max_steps=max_steps,
                                            reviews=reviews)

    async def embed(self, task: str, texts: list[str], *, org_id: str, provider: str, model: str,
                    dims: int | None = None) -> list[list[float]]:
        """Embeddings of `texts` from the provider's embedding API, recorded and capped like every call.

        Raises LLMOff (no key for the provider), AICapReached, or LLMUnavailable (the provider failed)."""
        org_id = _org(org_id)
        client = self._providers.get(provider)
        if not isinstance(client, OpenAIProvider):
            raise LLMOff(f"embeddings for {task} need an OpenAI key; {HOW_TO_TURN_ON}")
        ref = ModelRef(provider, model)
        spend = await self._ledger.spend(org_id)
        worst = price(ref, math.ceil(sum(len(t) for t in texts) / 2), 0)  # generous: 2 characters a token
        if spend.spend_usd + worst > spend.cap_usd:
            raise AICapReached(
                f"organization {org_id}: AI spend this month ${spend.spend_usd:.4f} plus up to ${worst:.4f} "
                f"for these embeddings would pass the cap of ${spend.cap_usd:.2f} "
                "(billing_profiles.ai_monthly_cap_usd)")
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        failure: ProviderFailed | None = None
        vectors: list[list[float]] = []
        tokens, served = 0, model
        try:
            vectors, tokens, served = await client.embed(model, texts, dims)
        except ProviderFailed as exc:
            failure = exc
        latency = int((time.perf_counter() - started) * 1000)
        cost = price(ref, tokens, 0) if failure is None else Decimal(0)
        call = LLMCall(task=task, provider=provider, model=model, request_id=request_id, input_tokens=tokens,
                       output_tokens=0, cached_tokens=0, cost_usd=float(cost), latency_ms=latency,
                       fallback_used=False, ok=failure is None, error=f"{failure.code}: {failure}" if failure else None)
        self.calls.append(call)
        await self._ledger.record(org_id, cost, {
            "request_id": request_id, "provider": provider, "model": model, "endpoint": "embeddings",
            "input_tokens": tokens, "output_tokens": 0, "latency_ms": latency, "cost_usd": str(cost),
            "status": failure.status if failure else "success", "error_code": failure.code if failure else None,
            "is_timeout": bool(failure and failure.status == "timeout"),
            "is_rate_limited": bool(failure and failure.status == "rate_limited"),
            "task_type": task[:64], "source": "api", "timestamp": datetime.now(UTC).isoformat(),
            "metadata": {"feature": task, "user_id": org_id, "on_behalf_of_org_id": org_id, "served_model": served},
        })
        if failure is not None:
            raise LLMUnavailable(f"{task}: {provider}:{model} failed ({failure.code})", [call])
        return vectors

    def _amend(self, call: LLMCall, error: str) -> LLMCall:
        """The call again, marked not ok: the provider answered (and billed) but the answer is unusable."""
        amended = dataclasses.replace(call, ok=False, error=error[:500])
        self.calls[self.calls.index(call)] = amended
        return amended

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        await self._ledger.aclose()


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The conversation's text, for its hash only."""
    parts = []
    for message in messages:
        content = message.get("content") or ""  # an OpenAI turn of tool calls alone has no content
        parts.append(content if isinstance(content, str) else " ".join(
            str(block.get("text") or block.get("content") or block.get("input") or "") for block in content))
    return "\n".join(parts)


def _repair_request(problem: str, schema: type[BaseModel]) -> str:
    return (f"Your answer did not match the required {schema.__name__} schema: {problem}. "
            "Answer again with a corrected object that matches the schema exactly.")
