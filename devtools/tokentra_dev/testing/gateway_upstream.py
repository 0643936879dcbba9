"""A local provider for the gateway's tests and benchmark: a bare ASGI app speaking OpenAI's
(`/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/models`) and Anthropic's
(`/v1/messages`, `/v1/messages/count_tokens`) wire formats, streamed and not.

The requested model steers it: `fail-<status>[-...]` answers that status in the provider's error shape
with Retry-After and rate-limit headers; `slow-<ms>-...` waits before answering; `drip-<ms>-...` streams
its chunks that far apart (a client can leave mid-stream); `hang-...` never answers in time. A request
without the expected provider key gets the provider's 401. Usage: input tokens are the request body's
length / 4 (at least 1); output tokens are max_tokens (or 30) for chat and messages, so a test knows the
cost of what it sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

PROVIDER_KEY = "sk-upstream-SECRET-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-upstream-SECRET-0123456789abcdef"
SECRET_HEADERS = {"openai-organization": "org-SECRET-account", "anthropic-organization-id": "SECRET-org-uuid",
                  "set-cookie": "session=SECRET; Path=/"}
# The dated snapshot a response names for a requested alias, as the providers answer.
SERVED = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06",
          "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14", "claude-haiku-4-5": "claude-haiku-4-5-20251001"}
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Upstream:
    """The ASGI app; `requests` keeps (path, headers, body) of what it received (in-process use)."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.finished_streams = 0
        self.delay = 0.0  # seconds every answer waits (tests that need calls in flight together)
        # Report the body's byte count as input tokens and nothing cached: a call then costs exactly the
        # gateway's reservation (its input bound is the byte count), whatever the order calls finish in.
        self.exact_usage = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        path: str = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        raw = await _read(receive)
        body = json.loads(raw) if raw else {}
        if self.keep:
            self.requests.append((path, headers, body))
        anthropic = "/messages" in path
        expected = ANTHROPIC_KEY if anthropic else PROVIDER_KEY
        presented = headers.get("x-api-key") if anthropic else headers.get("authorization", "")[7:]
        if presented != expected:
            return await _error(send, 401, anthropic)
        model = str(body.get("model", ""))
        if model.startswith("fail-"):
            return await _error(send, int(model.split("-")[1]), anthropic)
        if self.delay:
            await asyncio.sleep(self.delay)
        if model.startswith("slow-"):
            await asyncio.sleep(int(model.split("-")[1]) / 1000)
        if model.startswith("hang-"):
            await asyncio.sleep(3600)
        gap = int(model.split("-")[1]) / 1000 if model.startswith("drip-") else 0.0
        input_tokens = len(raw) if self.exact_usage else max(1, len(raw) // 4)
        if anthropic:
            return await self._anthropic(send, path, body, model, input_tokens, gap)
        await self._openai(send, path, body, model, input_tokens, gap)

    async def _openai(self, send: Send, path: str, body: dict[str, Any], model: str, input_tokens: int,
                      gap: float) -> None:
        if path.startswith("/v1/models"):
            return await _models(send, path)
        if path == "/v1/chat/completions":
            return await self._chat(send, body, model, input_tokens, gap)
        if path == "/v1/responses":
            out = _max(body, ("max_output_tokens",))
            usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                     "output_tokens": out, "output_tokens_details": {"reasoning_tokens": 0},
                     "total_tokens": input_tokens + out}
            if body.get("stream"):
                return await self._sse(send, _responses_events(model, usage), gap)
            return await _json(send, _response(model, usage))
        if path == "/v1/embeddings":
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) and inputs and isinstance(inputs[0], str) else 1
            return await _json(send, {"object": "list", "model": model,
                                      "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                                               for i in range(count)],
                                      "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens}})
        await _error(send, 404, False)

    async def _chat(self, send: Send, body: dict[str, Any], model: str, input_tokens: int, gap: float) -> None:
        out = _max(body, ("max_completion_tokens", "max_tokens"))
        usage = {"prompt_tokens": input_tokens, "completion_tokens": out, "total_tokens": input_tokens + out,
                 "prompt_tokens_details": {"cached_tokens": 0 if self.exact_usage else input_tokens // 2},
                 "completion_tokens_details": {"reasoning_tokens": out // 3}}
        if body.get("stream"):
            include = (body.get("stream_options") or {}).get("include_usage") is True
            return await self._sse(send, _chat_chunks(model, usage, include), gap)
        await _json(send, _chat(model, usage))

    async def _anthropic(self, send: Send, path: str, body: dict[str, Any], model: str, input_tokens: int,
                         gap: float) -> None:
        if path == "/v1/messages/count_tokens":
            return await _json(send, {"input_tokens": input_tokens})
        if path != "/v1/messages":
            return await _error(send, 404, True)
        out = _max(body, ("max_tokens",))
        usage = {"input_tokens": max(1, input_tokens - 10), "cache_read_input_tokens": 6,
                 "cache_creation_input_tokens": 4, "output_tokens": out, "service_tier": "standard"}
        if body.get("stream"):
            return await self._sse(send, _anthropic_events(model, usage), gap)
        await _json(send, _message(model, usage))

    async def _sse(self, send: Send, events: list[tuple[str | None, Any]], gap: float) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"x-request-id", b"req_stream"),
                                *_secret_headers()]})
        for index, (name, data) in enumerate(events):
            if gap and index:
                await asyncio.sleep(gap)
            text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
            prefix = f"event: {name}\n" if name else ""
            await send({"type": "http.response.body", "body": f"{prefix}data: {text}\n\n".encode(),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.finished_streams += 1


def _served(model: str) -> str:
    return SERVED.get(model, model)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read(receive: Receive) -> bytes:
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            return raw


async def _models(send: Send, path: str) -> None:
    if path.startswith("/v1/models/"):
        return await _json(send, {"id": path.rsplit("/", 1)[1], "object": "model", "created": 1,
                                  "owned_by": "system"})
    await _json(send, {"object": "list", "data": [{"id": m, "object": "model", "created": 1, "owned_by": "system"}
                                                  for m in ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")]})


def _max(body: dict[str, Any], keys: tuple[str, ...]) -> int:
    return next((body[k] for k in keys if isinstance(body.get(k), int) and body[k] > 0), 30)


def _secret_headers() -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in SECRET_HEADERS.items()]


async def _json(send: Send, payload: dict[str, Any], status: int = 200,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(payload, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"x-request-id", b"req_123"), (b"x-ratelimit-remaining-requests", b"4999"), *_secret_headers(),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


async def _error(send: Send, status: int, anthropic: bool) -> None:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             429: "rate_limit_error", 500: "api_error", 503: "api_error", 529: "overloaded_error"}
    kind = kinds.get(status, "api_error")
    if anthropic:
        payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": f"upstream status {status}"}}
    else:
        payload = {"error": {"message": f"upstream status {status}", "type": kind, "param": None,
                             "code": "rate_limit_exceeded" if status == 429 else None}}
    await _json(send, payload, status, [(b"retry-after", b"7"), (b"x-should-retry", b"false")])


def _chat(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": _served(model),
            "service_tier": "default", "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "Paris.", "refusal": None,
                                     "tool_calls": None}}],
            "usage": usage}


def _chat_chunks(model: str, usage: dict[str, Any], include_usage: bool) -> list[tuple[str | None, Any]]:
    base: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                            "model": _served(model), "service_tier": "default"}
    if include_usage:
        base["usage"] = None
    deltas = [{"role": "assistant", "content": ""}, {"content": "Par"}, {"content": "is"}, {"content": "."}]
    chunks: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]}) for d in deltas]
    chunks.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if include_usage:
        chunks.append((None, {**base, "choices": [], "usage": usage}))
    chunks.append((None, "[DONE]"))
    return chunks


def _response(model: str, usage: dict[str, Any] | None, status: str = "completed") -> dict[str, Any]:
    output = [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "Paris.", "annotations": []}]}]
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": _served(model),
            "status": status, "output": output if status == "completed" else [], "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "service_tier": "default", "usage": usage}


def _responses_events(model: str, usage: dict[str, Any]) -> list[tuple[str | None, Any]]:
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    events = [
        ("response.created", {"response": _response(model, None, "in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                        "delta": "Paris.", "logprobs": []}),
        ("response.completed", {"response": _response(model, usage)}),
    ]
    return [(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events)]


def _message(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": _served(model),
            "content": [{"type": "text", "text": "Paris."}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": usage}


def _anthropic_events(model: str, usage: dict[str, Any]) -> list[tuple[str | None, Any]]:
    start = {**_message(model, {**usage, "output_tokens": 1}), "content": [], "stop_reason": None}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": t}}) for t in ("Par", "is", ".")]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": usage["output_tokens"]},
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


class UpstreamServer:
    """The app on a free loopback port, served by uvicorn on a thread: `with UpstreamServer() as up:`."""

    def __init__(self, keep: bool = True) -> None:
        self.app = Upstream(keep)
        self.port = _free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> UpstreamServer:
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the upstream server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# `uvicorn tokentra_dev.gateway_upstream:app` serves it in a process of its own (the benchmark).
app = Upstream(keep=False)
