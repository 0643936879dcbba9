"""One call through the gateway: upstream attempts with fallbacks, the answer passed through, its usage
recorded once.

Bodies go upstream as the client sent them (re-serialised only when the model changes or OpenAI chat
stream usage is asked for on the client's behalf) and come back byte for byte, with the provider's status
and the headers that matter (rate-limit headers, Retry-After, request ids). A streamed answer is read from
the provider by a task of its own, so a client that disconnects mid-stream does not stop the reading: the
gateway reads on to the provider's usage and records what was generated.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import Response, StreamingResponse
from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn
from tokentra_functions.gateway import cache as gateway_cache
from tokentra_functions.gateway import metrics
from tokentra_functions.gateway.admission import Admission, Hold
from tokentra_functions.gateway.errors import Refusal
from tokentra_functions.gateway.policy import Decision, Upstream, VirtualKey, budget_attribution
from tokentra_functions.gateway.provider_client import ProviderClient, ProviderResponse, UpstreamError
from tokentra_functions.gateway.recorder import UsageRecorder
from tokentra_functions.gateway.wire import CHAT, MESSAGES, RequestFacts, StreamTap, tokens, usage_of

log = logging.getLogger("tokentra.gateway")

# Client headers forwarded upstream (the client's own credentials never are).
FORWARD = {"openai": ("openai-beta", "idempotency-key", "accept"),
           "anthropic": ("anthropic-version", "anthropic-beta", "idempotency-key", "accept")}
# Provider headers passed back; everything naming the provider account (organization, project, cookies)
# stays behind.
PASS_BACK_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
PASS_BACK = {"content-type", "retry-after", "retry-after-ms", "x-request-id", "request-id", "openai-processing-ms",
             "openai-version", "x-should-retry"}
FALLBACK_STATUSES = {429, 500, 502, 503, 504, 529}
_tasks: set[asyncio.Task[None]] = set()  # stream pumps outliving their client


@dataclass(slots=True)
class Call:
    pool: AsyncConnectionPool[AsyncConn]
    client: ProviderClient
    recorder: UsageRecorder
    admission: Admission
    key: VirtualKey
    provider: str
    endpoint: str
    path: str
    body: dict[str, Any]
    raw: bytes
    facts: RequestFacts
    decision: Decision
    upstream: Upstream
    headers: dict[str, str]
    attribution: dict[str, Any]
    reservation: Hold | None
    started: float
    started_at: datetime
    cache_store: bool = False  # a miss of the semantic cache: keep a successful answer
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    attempts: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------ attempts
    async def run(self) -> Response:
        candidates = [self.decision.model, *self.decision.fallbacks]
        failure: tuple[str, ProviderResponse | None, bytes] | None = None
        for index, model in enumerate(candidates):
            last = index == len(candidates) - 1
            if index:
                try:
                    await self._reserve_for(model)
                except Refusal as refusal:
                    metrics.REFUSALS.labels(refusal.reason).inc()
                    self._record_attempts()
                    return refusal.response(self.provider)  # type: ignore[arg-type]
            try:
                response = await self._send(model)
                if self.facts.stream and response.status == 200:
                    return self._stream(model, response)
                try:
                    content = await response.read()
                finally:
                    response.release()  # back to the pool once read to its end, closed otherwise
            except TimeoutError:  # the connect and read timeouts
                failure = ("timeout", None, b"")
            except UpstreamError:
                failure = ("unreachable", None, b"")
            else:
                if response.status in FALLBACK_STATUSES and not last:
                    failure = (str(response.status), response, content)
                else:
                    return self._answer(model, response, content)
            self._attempt_failed(model, failure[0])
        # Every candidate failed before an answer: the last provider error as the provider sent it, or ours.
        if failure is None:  # the loop always ran at least once
            raise RuntimeError("no upstream attempt was made")
        cause, failed, content = failure
        if failed is not None:
            return self._answer(candidates[-1], failed, content)
        self.admission.release(self.reservation)
        self.reservation = None
        self._record_attempts()
        reason = "upstream_timeout" if cause == "timeout" else "upstream_unreachable"
        metrics.REQUESTS.labels(self.provider, self.endpoint, "504" if cause == "timeout" else "502").inc()
        return Refusal(reason, f"The {self.provider} API did not answer ({cause}).").response(
            self.provider, self._our_headers(candidates[-1]))  # type: ignore[arg-type]

    async def _reserve_for(self, model: str) -> None:
        """A fallback model has its own price: release the last hold and hold the fallback's maximum."""
        self.admission.release(self.reservation)
        self.reservation = None
        self.reservation = await self.admission.reserve(
            self.key.org_id, self.key.key_id, self.provider, model, self.facts.input_tokens_bound,
            self.facts.max_output_tokens, budget_attribution(self.attribution))

    async def _send(self, model: str) -> ProviderResponse:
        """The attempt's request; the answer's headers are in, its body is not read yet."""
        body = self.raw
        inject = self.endpoint == CHAT and self.facts.stream and not self.facts.asked_stream_usage
        if model != self.facts.model or inject:
            payload = dict(self.body, model=model)
            if inject:
                options = payload.get("stream_options")
                payload["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            body = json.dumps(payload, separators=(",", ":")).encode()
        url = self.upstream.base_url + (self.path if self.provider == "openai" else "/v1" + self.path)
        return await self.client.request("POST", url, self.headers, body)

    def _attempt_failed(self, model: str, cause: str) -> None:
        metrics.FALLBACKS.labels(self.provider, cause).inc()
        self.attempts.append({"model": model, "cause": cause,
                              "latency_ms": round((time.perf_counter() - self.started) * 1000)})

    # ------------------------------------------------------------ answers
    def _answer(self, model: str, response: ProviderResponse, content: bytes) -> Response:
        # The answer's bytes go back as they came; reading its usage (a JSON parse), the cache store and the
        # usage event (its fields, its JSON line for the writer) come just after it is written to the
        # client, not before: call_soon runs them once the handler's send, which does not yield, has put
        # the answer on the wire, and whatever happens to that write, so every answered call is still
        # recorded once.
        asyncio.get_running_loop().call_soon(self._answered, model, response.status, content)
        metrics.child(metrics.REQUESTS, self.provider, self.endpoint, str(response.status)).inc()
        metrics.child(metrics.LATENCY, self.provider, self.endpoint).observe(time.perf_counter() - self.started)
        return Response(content=content, status_code=response.status,
                        headers={**pass_back(response), **self._our_headers(model)})

    def _answered(self, model: str, status_code: int, content: bytes) -> None:
        """A non-streamed answer's usage, read from its body, and its record (after the answer is written)."""
        raw_usage = served = tier = None
        error_code = None
        if status_code == 200:
            try:
                payload = json.loads(content)
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                raw_usage, served, tier = usage_of(self.endpoint, payload)
                if self.cache_store:
                    gateway_cache.store_later(self.pool, self.key.org_id, self.provider, model, self.body, payload,
                                              tokens(self.endpoint, raw_usage), self.facts.task_type)
        else:
            error_code = _error_code(content) or str(status_code)
        self._record(model, served, raw_usage, tier, _status(status_code), error_code, None)

    def _stream(self, model: str, response: ProviderResponse) -> StreamingResponse:
        strip = self.endpoint == CHAT and not self.facts.asked_stream_usage
        pump = _Pump(self, model, response, StreamTap(self.endpoint, strip))
        task = asyncio.get_running_loop().create_task(pump.run(), name="gateway-stream")
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
        metrics.REQUESTS.labels(self.provider, self.endpoint, "200").inc()
        return _PumpResponse(pump, headers={**pass_back(response), **self._our_headers(model)})

    def _our_headers(self, model: str) -> dict[str, str]:
        headers = {"x-tokentra-request-id": self.request_id, "x-tokentra-model": model}
        if self.attempts:
            headers["x-tokentra-fallback-from"] = ",".join(a["model"] for a in self.attempts)
        return headers

    # ------------------------------------------------------------ usage
    def _record(self, model: str, served: str | None, raw_usage: dict[str, Any] | None, tier: str | None,
                status: str, error_code: str | None, ttft_ms: int | None) -> None:
        self._record_attempts()
        counts = tokens(self.endpoint, raw_usage)
        for kind, count in counts.items():
            if count:
                metrics.child(metrics.TOKENS, self.provider, kind.removesuffix("_tokens")).inc(count)
        event = self._event(self.request_id, served or model, status, error_code)
        event.update(counts)
        event.update(raw_usage=raw_usage, service_tier=tier, time_to_first_token_ms=ttft_ms,
                     is_streaming=self.facts.stream, retry_count=len(self.attempts))
        if model != self.facts.model:
            event["routed_from_model"] = self.facts.model
        if self.decision.rule_id and model == self.decision.model:
            event["routing_rule_id"] = self.decision.rule_id
        if self.decision.arm and model == self.decision.model:
            event["routing_arm"] = self.decision.arm
        self.recorder.submit(self.key.ingest_key, event,
                             self.reservation.report() if self.reservation is not None else None)

    def _record_attempts(self) -> None:
        """Each abandoned attempt is a usage row of its own (an error that cost nothing), recorded once."""
        for attempt in self.attempts:
            if attempt.get("recorded"):
                continue
            cause = attempt["cause"]
            status = "timeout" if cause == "timeout" else "rate_limited" if cause == "429" else "error"
            event = self._event(str(uuid.uuid4()), attempt["model"], status, cause)
            event["latency_ms"] = attempt["latency_ms"]
            event["is_streaming"] = self.facts.stream
            self.recorder.submit(self.key.ingest_key, event)
            attempt["recorded"] = True

    def _event(self, request_id: str, model: str, status: str, error_code: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = dict(self.attribution)
        metadata["gateway"] = {"virtual_key": self.key.name, "decision": self.decision.reason[:200]}
        if self.attempts and request_id == self.request_id:
            metadata["gateway"]["fallback_from"] = [a["model"] for a in self.attempts]
        return {
            "request_id": request_id, "provider": self.provider, "model": model, "endpoint": self.endpoint,
            "status": status, "error_code": error_code,
            "latency_ms": round((time.perf_counter() - self.started) * 1000),
            "prompt_hash": self.facts.prompt_hash, "system_prompt_hash": self.facts.system_prompt_hash,
            "task_type": self.facts.task_type, "metadata": metadata, "source": "gateway",
            "timestamp": self.started_at.isoformat(),
        }


class _Pump:
    """Reads the provider's stream to its end whatever the client does, passing events on while the
    client listens; records the usage when the provider is done."""

    def __init__(self, call: Call, model: str, response: ProviderResponse, tap: StreamTap) -> None:
        self.call, self.model, self.response, self.tap = call, model, response, tap
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.listening = True
        self.first_byte: float | None = None

    async def run(self) -> None:
        status, error_code = "success", None
        try:
            async for chunk in self.response.iter_chunks():
                out = self.tap.feed(chunk)
                if out:
                    if self.first_byte is None:
                        self.first_byte = time.perf_counter()
                    if self.listening:
                        self.queue.put_nowait(out)
            rest = self.tap.close()
            if rest and self.listening:
                self.queue.put_nowait(rest)
        except TimeoutError:
            status, error_code = "timeout", "stream_timeout"
        except UpstreamError:
            status, error_code = "error", "stream_broken"
        finally:
            self.response.release()  # back to the pool once read to its end, closed otherwise
            self.queue.put_nowait(None)
            if self.tap.error and status == "success":
                status, error_code = "error", self.tap.error
            if not self.listening and status == "success":
                status = "cancelled"  # the client left; what was generated is still counted
            ttft = None if self.first_byte is None else round((self.first_byte - self.call.started) * 1000)
            self.call._record(self.model, self.tap.model, self.tap.usage, self.tap.tier, status, error_code, ttft)
            metrics.LATENCY.labels(self.call.provider, self.call.endpoint).observe(
                time.perf_counter() - self.call.started)

    async def body(self) -> Any:
        try:
            while (item := await self.queue.get()) is not None:
                yield item
        finally:
            self.listening = False

    def client_left(self) -> None:
        """The client disconnected: stop passing events on (the body ends at once); the reading goes on."""
        self.listening = False
        self.queue.put_nowait(None)


class _PumpResponse(StreamingResponse):
    """A pump's events to the client. Starlette's StreamingResponse watches for the client leaving from an
    anyio task group, whose set-up and cancellation (formatting the task's repr for the cancel message)
    were about a third of the server's CPU on a streamed call; here a plain task waits for the disconnect."""

    def __init__(self, pump: _Pump, headers: dict[str, str]) -> None:
        super().__init__(pump.body(), status_code=200, headers=headers)
        self.pump = pump

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        watch = asyncio.get_running_loop().create_task(self._watch(receive))
        try:
            await self.stream_response(send)
        finally:
            watch.cancel()

    async def _watch(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.pump.client_left()


def pass_back(response: ProviderResponse) -> dict[str, str]:
    """The provider's headers the client gets."""
    return {name: value for name, value in response.headers
            if name in PASS_BACK or name.startswith(PASS_BACK_PREFIXES)}


def _status(code: int) -> str:
    if code < 400:
        return "success"
    return "rate_limited" if code == 429 else "timeout" if code in (408, 504) else "error"


def _error_code(content: bytes) -> str | None:
    try:
        payload = json.loads(content)
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return str(code)[:100] if code else None
    return None


def upstream_headers(provider: str, upstream: Upstream, request_headers: Any) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
    for name in FORWARD[provider]:
        value = request_headers.get(name)
        if value:
            headers[name] = value
    if provider == "anthropic":
        headers["x-api-key"] = upstream.api_key
        headers.setdefault("anthropic-version", "2023-06-01")
    else:
        headers["authorization"] = f"Bearer {upstream.api_key}"
    return headers


def now_utc() -> datetime:
    return datetime.now(UTC)


__all__ = ["Call", "MESSAGES", "now_utc", "pass_back", "upstream_headers"]
