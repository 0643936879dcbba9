"""Scripted local servers speaking OpenAI's chat completions and embeddings and Anthropic's messages wire protocols.

A test/bench fixture, never a product code path: the real `openai` and `anthropic` clients are pointed at
it (`LLMServers.env()`), and a script decides each answer from the request it saw:

    def script(seen: SeenRequest) -> Answer:
        return Answer.json({"verdict": "accept"}) if seen.provider == "openai" else Answer.error(529)

    with LLMServers(script) as servers:
        ...  # OPENAI_BASE_URL=servers.openai_base_url, ANTHROPIC_BASE_URL=servers.anthropic_base_url

Token counts are estimated at about 4 characters per token of the request and of the answer, so the
costs computed from them are realistic. Prompt caching is simulated as the providers document it: a
prompt prefix of at least 1,024 tokens seen before is reported as cached (OpenAI automatically, in
steps of 128 tokens; Anthropic for a system block marked with `cache_control`).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tokentra_dev.testing.http_server import LocalHTTPServer

__all__ = ["Answer", "LLMServers", "SeenRequest", "estimate_tokens"]

CACHE_MIN_TOKENS = 1024  # both providers' documented minimum cacheable prefix (for most models)
_OPENAI_KEY = "sk-test-llm-servers-openai-0123456789abcdef"
_ANTHROPIC_KEY = "sk-ant-test-llm-servers-anthropic-0123456789"


def estimate_tokens(text: str) -> int:
    """About 4 characters per token, at least 1 for any non-empty text."""
    return math.ceil(len(text) / 4) if text else 0


@dataclass
class SeenRequest:
    provider: str  # "openai" | "anthropic"
    model: str
    system: str  # the system prompt text
    prompt: str  # the user message text (concatenated)
    schema_name: str | None  # json_schema name (OpenAI) or tool name (Anthropic)
    body: dict  # the raw request body
    peer: tuple[str, int] | None = None  # the client's address: one pooled connection, one port

    @property
    def tools(self) -> list[str]:
        """The names of the tools the request offers (both protocols)."""
        return [t.get("function", t).get("name", "") for t in self.body.get("tools") or []]


@dataclass(frozen=True)
class Answer:
    """What a script returns for one request; build it with the static constructors."""

    kind: str  # "json" | "malformed" | "error" | "delay" | "tools"
    payload: Any = None
    status: int = 200
    seconds: float = 0.0
    then: Answer | None = None

    @staticmethod
    def json(obj: dict) -> Answer:
        """A well-formed structured answer in the provider's native shape."""
        return Answer("json", payload=obj)

    @staticmethod
    def malformed(text: str) -> Answer:
        """Content that is not valid for the schema: bad JSON, or JSON with wrong fields."""
        return Answer("malformed", payload=text)

    @staticmethod
    def tool_calls(*calls: tuple[str, dict | str]) -> Answer:
        """Tool calls (name, arguments) in the provider's native shape; arguments given as a str are sent
        as they are (to send arguments that are not JSON)."""
        return Answer("tools", payload=list(calls))

    @staticmethod
    def error(status: int) -> Answer:
        """The provider's error body with this HTTP status (500, 529, 429, ...)."""
        return Answer("error", status=status)

    @staticmethod
    def delay(seconds: float, then: Answer) -> Answer:
        """Answer `then`, but only after `seconds` (to exercise timeouts)."""
        return Answer("delay", seconds=seconds, then=then)


@dataclass
class _Cache:
    """Prompt prefixes seen so far, per provider and model, as the providers' caches would hold them."""

    prefixes: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str) -> bool:
        with self.lock:
            seen = key in self.prefixes
            self.prefixes.add(key)
            return seen


class LLMServers(LocalHTTPServer):
    """`with LLMServers(script) as s:` one local HTTP server speaking both protocols."""

    def __init__(self, script: Callable[[SeenRequest], Answer]) -> None:
        self.script = script
        self.seen: list[SeenRequest] = []
        self._cache = _Cache()
        super().__init__(_Handler)

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url  # the anthropic client appends /v1/messages itself

    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": _OPENAI_KEY, "OPENAI_BASE_URL": self.openai_base_url,
                "ANTHROPIC_API_KEY": _ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": self.anthropic_base_url}


def _text(content: Any) -> str:
    """The text of a message content: a string, or a list of content blocks/parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # text blocks, and tool results (whose content is itself text or blocks)
        return "\n".join(_text(part.get("content")) if part.get("type") == "tool_result" else str(part.get("text", ""))
                         for part in content if isinstance(part, dict))
    return ""


def _parse_openai(body: dict) -> SeenRequest:
    messages = body.get("messages") or []
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    prompt = "\n".join(_text(m.get("content")) for m in messages if m.get("role") not in ("system", "developer"))
    fmt = body.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name") if fmt.get("type") == "json_schema" else None
    return SeenRequest("openai", str(body.get("model", "")), system, prompt, name, body)


def _parse_anthropic(body: dict) -> SeenRequest:
    system = _text(body.get("system") or "")
    prompt = "\n".join(_text(m.get("content")) for m in body.get("messages") or [])
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    name = choice.get("name") or (tools[0].get("name") if len(tools) == 1 else None)
    return SeenRequest("anthropic", str(body.get("model", "")), system, prompt, name, body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs do; the clients pool connections

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        owner: LLMServers = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw or b"{}")
        if self.path.endswith("/embeddings"):
            return self._send(200, _openai_embeddings(body))
        if self.path.endswith("/chat/completions"):
            seen = _parse_openai(body)
        elif self.path.endswith("/messages"):
            seen = _parse_anthropic(body)
        else:
            return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        seen.peer = self.client_address[:2]
        owner.seen.append(seen)
        try:
            answer = owner.script(seen)
        except Exception as exc:  # a broken script shows up as a server error the test can see
            answer = Answer("error", payload=f"script raised {type(exc).__name__}: {exc}", status=500)
        while answer.kind == "delay":
            time.sleep(answer.seconds)
            answer = answer.then or Answer.error(500)
        try:
            if answer.kind == "error":
                self._error(seen.provider, answer.status, answer.payload)
            elif seen.provider == "openai":
                self._send(200, _openai_answer(owner._cache, seen, raw, answer))
            else:
                self._send(200, _anthropic_answer(owner._cache, seen, raw, answer))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): nothing to answer

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, provider: str, status: int, message: str | None) -> None:
        kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                 429: "rate_limit_error", 500: "api_error", 503: "api_error", 529: "overloaded_error"}
        kind = kinds.get(status, "api_error")
        message = message or f"scripted error {status}"
        if provider == "anthropic":
            payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
            headers = {"request-id": f"req_{uuid.uuid4().hex[:24]}"}
        else:
            code = "rate_limit_exceeded" if status == 429 else None
            payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
            headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}
        self._send(status, payload, headers)


def _openai_embeddings(body: dict) -> dict:
    """OpenAI's embeddings answer: deterministic unit vectors from the words of each input (texts sharing
    words point alike), `dimensions` long (1536 by default), 4 characters a token."""
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    dims = int(body.get("dimensions") or 1536)
    data = []
    for index, text in enumerate(texts):
        vector = [0.0] * dims
        for word in str(text).lower().split():
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:4], "big") % dims] += 1.0 if digest[4] % 2 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        data.append({"object": "embedding", "index": index, "embedding": [v / norm for v in vector]})
    tokens = sum(estimate_tokens(str(t)) for t in texts)
    return {"object": "list", "data": data, "model": str(body.get("model", "")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _content_text(answer: Answer) -> str:
    if answer.kind == "tools":
        return json.dumps([[name, args] for name, args in answer.payload])
    return json.dumps(answer.payload) if answer.kind == "json" else str(answer.payload)


def _arguments(args: dict | str) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _cached_prefix(cache: _Cache, key: str, prefix_tokens: int) -> bool:
    return prefix_tokens >= CACHE_MIN_TOKENS and cache.hit(key)


def _openai_answer(cache: _Cache, seen: SeenRequest, raw: bytes, answer: Answer) -> dict:
    text = _content_text(answer)
    # The whole serialized request approximates what the model reads (messages, schema, role markup).
    input_tokens = estimate_tokens(raw.decode())
    system_tokens = estimate_tokens(seen.system)
    key = "openai:" + seen.model + ":" + hashlib.sha256(seen.system.encode()).hexdigest()
    cached = (system_tokens // 128) * 128 if _cached_prefix(cache, key, system_tokens) else 0
    output_tokens = max(1, estimate_tokens(text))
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if answer.kind == "tools":
        message["content"] = None
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": name, "arguments": _arguments(args)}}
                                 for name, args in answer.payload]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": seen.model, "service_tier": "default", "system_fingerprint": "fp_llmservers",
        "choices": [{"index": 0, "finish_reason": "tool_calls" if answer.kind == "tools" else "stop",
                     "logprobs": None, "message": message}],
        "usage": {"prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                  "total_tokens": input_tokens + output_tokens,
                  "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}},
    }


def _anthropic_cache_marked(body: dict) -> bool:
    system = body.get("system")
    return isinstance(system, list) and any(isinstance(b, dict) and b.get("cache_control") for b in system)


def _anthropic_answer(cache: _Cache, seen: SeenRequest, raw: bytes, answer: Answer) -> dict:
    text = _content_text(answer)
    content: list[dict[str, Any]]
    obj: Any = answer.payload if answer.kind == "json" else None
    if answer.kind == "malformed":
        try:
            obj = json.loads(text)  # JSON with wrong fields still arrives as a tool call
        except ValueError:
            obj = None
    if answer.kind == "tools":
        content = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name,
                    # Anthropic's input is always an object; arguments that are not JSON arrive as a string
                    "input": args if isinstance(args, dict) else {"_raw": args}}
                   for name, args in answer.payload]
        stop_reason = "tool_use"
    elif isinstance(obj, dict) and seen.schema_name:
        content = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": seen.schema_name,
                    "input": obj}]
        stop_reason = "tool_use"
    else:  # not an object: the model answered in prose instead of calling the tool
        content = [{"type": "text", "text": text}]
        stop_reason = "end_turn"
    total = estimate_tokens(raw.decode())
    system_tokens = estimate_tokens(seen.system)
    read = write = 0
    if _anthropic_cache_marked(seen.body) and system_tokens >= CACHE_MIN_TOKENS:
        key = "anthropic:" + seen.model + ":" + hashlib.sha256(seen.system.encode()).hexdigest()
        if cache.hit(key):
            read = system_tokens
        else:
            write = system_tokens
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": seen.model,
        "content": content, "stop_reason": stop_reason, "stop_sequence": None,
        # Anthropic's input_tokens leaves out the cache reads and writes.
        "usage": {"input_tokens": total - read - write, "cache_read_input_tokens": read,
                  "cache_creation_input_tokens": write, "output_tokens": max(1, estimate_tokens(text)),
                  "service_tier": "standard"},
    }
