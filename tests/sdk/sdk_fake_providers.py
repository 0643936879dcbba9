"""A local HTTP server speaking enough of OpenAI's and Anthropic's wire formats for the real clients.

The requested model steers it: `fail-<status>` answers that status in the provider's error shape,
`stream-error` breaks a stream after its first event, `json-...` answers JSON_ANSWER (pretty JSON in
prose and a code fence) instead of "Paris.". Usage numbers are fixed so tests can assert them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tokentra_dev.testing.http_server import LocalHTTPServer

CHAT_USAGE = {
    "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
    "completion_tokens_details": {"reasoning_tokens": 12},
}
RESPONSES_USAGE = {
    "input_tokens": 200, "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 8},
    "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 16}, "total_tokens": 240,
}
# Anthropic's input_tokens leaves out cache reads and writes: 10 + 100 + 50 = 160 in our convention.
ANTHROPIC_USAGE = {
    "input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50,
    "output_tokens": 20, "service_tier": "standard", "output_tokens_details": {"thinking_tokens": 5},
}
PROVIDER_KEY = "sk-test-SECRET-provider-key-0123456789"
JSON_ANSWER = 'Here is the JSON you asked for:\n```json\n{\n  "city": "Paris",\n  "country": "France"\n}\n```\n'
SERVED_MODEL_SUFFIX = "-2026-01-01"  # the response names a dated model, unlike the request


class ProviderServer(LocalHTTPServer):
    """Start with `with ProviderServer() as server:`; `requests` holds (path, headers, body) seen."""

    def __init__(self, served: dict[str, str] | None = None) -> None:
        # The model name a response reports for a requested one; default: the request plus a date.
        self.served = served or {}
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        super().__init__(_Handler)

    @property
    def url(self) -> str:
        return self.base_url


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        self.server.owner.requests.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        model = str(body.get("model", ""))
        anthropic = self.path.endswith("/messages")
        if model.startswith("fail-"):
            return self._error(int(model.split("-")[1]), anthropic)
        served = self.server.owner.served.get(model, model + SERVED_MODEL_SUFFIX)  # type: ignore[attr-defined]
        if self.path.endswith("/chat/completions"):
            chunks = _chat_chunks(served, body) if body.get("stream") else None
            return self._json(_chat_completion(served)) if chunks is None else self._sse(chunks, model)
        if self.path.endswith("/responses"):
            return self._sse(_responses_events(served), model) if body.get("stream") else self._json(
                _response(served))
        if anthropic:
            return self._sse(_anthropic_events(served), model) if body.get("stream") else self._json(
                _message(served))
        self._error(404, anthropic)

    def _json(self, payload: dict[str, Any], status: int = 200,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: Iterable[tuple[str | None, Any]], model: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for index, (name, data) in enumerate(events):
            if model == "stream-error" and index == 1:
                error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                if name is None:  # OpenAI chat: an error object in the data stream
                    error = {"error": {"message": "server broke", "type": "server_error",
                                       "code": "server_error"}}
                self._event("error" if name else None, error)
                return
            self._event(name, data)

    def _event(self, name: str | None, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        prefix = f"event: {name}\n" if name else ""
        self.wfile.write(f"{prefix}data: {text}\n\n".encode())
        self.wfile.flush()

    def _error(self, status: int, anthropic: bool) -> None:
        kinds = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
                 404: "not_found_error"}
        kind = kinds.get(status, "api_error")
        if anthropic:
            payload: dict[str, Any] = {"type": "error",
                                       "error": {"type": kind, "message": f"status {status}"}}
        else:
            code = "rate_limit_exceeded" if status == 429 else None
            payload = {"error": {"message": f"status {status}", "type": kind, "param": None, "code": code}}
        # A 1 ms server-directed delay keeps the clients' own retries fast when a test enables them.
        self._json(payload, status, {"retry-after-ms": "1", "retry-after": "0"})


def _answer(model: str) -> str:
    return JSON_ANSWER if model.startswith("json-") else "Paris."


def _chat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "service_tier": "default", "system_fingerprint": None,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": _answer(model), "refusal": None}}],
        "usage": CHAT_USAGE,
    }


def _chat_chunks(model: str, body: dict[str, Any]) -> list[tuple[str | None, Any]]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
            "service_tier": "default"}
    deltas = [{"role": "assistant", "content": ""}, {"content": "Par"}, {"content": "is."}]
    chunks: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}], "usage": None})
        for d in deltas
    ]
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    chunks.append((None, {**base, "choices": [finish], "usage": None}))
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append((None, {**base, "choices": [], "usage": CHAT_USAGE}))
    chunks.append((None, "[DONE]"))
    return chunks


def _response(model: str, status: str = "completed") -> dict[str, Any]:
    output = [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": _answer(model), "annotations": []}]}]
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "model": model, "status": status,
        "output": output if status == "completed" else [], "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [], "service_tier": "default",
        "usage": RESPONSES_USAGE if status == "completed" else None,
    }


def _responses_events(model: str) -> list[tuple[str | None, Any]]:
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
    events = [
        ("response.created", {"response": _response(model, "in_progress")}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                         "part": {"type": "output_text", "text": "", "annotations": []}}),
        ("response.output_text.delta", {"item_id": "msg_1", "output_index": 0, "content_index": 0,
                                        "delta": "Paris.", "logprobs": []}),
        ("response.completed", {"response": _response(model)}),
    ]
    return [(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events)]


def _message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": _answer(model)}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": ANTHROPIC_USAGE,
    }


def _anthropic_events(model: str) -> list[tuple[str | None, Any]]:
    start_usage = {k: v for k, v in ANTHROPIC_USAGE.items() if k != "output_tokens_details"}
    start_usage["output_tokens"] = 1  # message_start carries a provisional output count
    message = {**_message(model), "content": [], "stop_reason": None, "usage": start_usage}
    delta_usage = {"output_tokens": ANTHROPIC_USAGE["output_tokens"],
                   "output_tokens_details": ANTHROPIC_USAGE["output_tokens_details"]}
    return [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Paris."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "usage": delta_usage,
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
        ("message_stop", {"type": "message_stop"}),
    ]
