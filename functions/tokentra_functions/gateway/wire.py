"""What the gateway reads from the providers' wire formats: a request's facts before the call, the usage
of a finished answer, and the usage carried by a stream as it passes.

Only the SDK's own helpers turn prompts into hashes and provider usage into the ingest convention
(`tokentra._prompt`, `tokentra._usage`), so a call made through the gateway and the same call made
through the SDK give the same prompt hash and the same token counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tokentra._prompt import extract_texts, hash_text
from tokentra._usage import merge_delta, normalize_usage
from tokentra.classifier import classify

# Endpoints as usage rows name them (the SDK's names).
CHAT, RESPONSES, EMBEDDINGS, MESSAGES = "chat.completions", "responses", "embeddings", "messages"
# An image's tokens are not in its URL's bytes: each image part reserves this much input.
IMAGE_TOKENS = 2_000


@dataclass(slots=True)
class RequestFacts:
    """A request as policy sees it: no prompt text survives past the hashes."""

    model: str
    stream: bool
    prompt_hash: str | None
    system_prompt_hash: str | None
    task_type: str | None
    input_tokens_bound: int
    max_output_tokens: int | None
    asked_stream_usage: bool
    images: int


def request_facts(endpoint: str, body: dict[str, Any], raw: bytes) -> RequestFacts:
    """Facts of a parsed request body. The input bound is the body's byte count (a byte-level BPE token
    is at least one byte, and the JSON around the text only adds bytes) plus IMAGE_TOKENS per image part:
    an upper bound, since the reservation must never be below the call's real cost."""
    if endpoint == RESPONSES:
        texts = extract_texts(endpoint, body.get("input"), body.get("instructions"))
    elif endpoint == EMBEDDINGS:
        source = body.get("input")
        texts = extract_texts(endpoint, source if isinstance(source, str) else None, None)
    else:
        texts = extract_texts(endpoint, body.get("messages"), body.get("system"))
    images = raw.count(b'"image_url"') + raw.count(b'"input_image"') + raw.count(b'"type":"image"') + raw.count(
        b'"type": "image"')
    stream = body.get("stream") is True
    options = body.get("stream_options")
    return RequestFacts(
        model=str(body.get("model") or ""),
        stream=stream,
        prompt_hash=hash_text(texts.conversation) if endpoint != EMBEDDINGS else hash_text(json.dumps(
            body.get("input"), sort_keys=True, default=str)),
        system_prompt_hash=hash_text(texts.system),
        task_type=classify(texts.last_user or texts.conversation, texts.system) if endpoint != EMBEDDINGS else None,
        input_tokens_bound=len(raw) + IMAGE_TOKENS * images,
        max_output_tokens=_max_output(endpoint, body),
        asked_stream_usage=isinstance(options, dict) and options.get("include_usage") is True,
        images=images,
    )


def _max_output(endpoint: str, body: dict[str, Any]) -> int | None:
    """The call's output ceiling, times the number of choices; None when the request sets none."""
    if endpoint == EMBEDDINGS:
        return 0
    keys = {CHAT: ("max_completion_tokens", "max_tokens"), RESPONSES: ("max_output_tokens",),
            MESSAGES: ("max_tokens",)}[endpoint]
    ceiling = next((body[k] for k in keys if isinstance(body.get(k), int) and body[k] > 0), None)
    choices = body.get("n") if endpoint == CHAT and isinstance(body.get("n"), int) and body["n"] > 1 else 1
    return None if ceiling is None else ceiling * choices


def usage_of(endpoint: str, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(raw usage, served model, service tier) of a finished non-streamed answer."""
    usage = payload.get("usage")
    tier = payload.get("service_tier")
    if endpoint == MESSAGES and isinstance(usage, dict):
        tier = tier or usage.get("service_tier")
    model = payload.get("model")
    return (usage if isinstance(usage, dict) else None, model if isinstance(model, str) else None,
            tier if isinstance(tier, str) else None)


def tokens(endpoint: str, raw: dict[str, Any] | None) -> dict[str, int]:
    """Provider usage in the ingest convention (embeddings report prompt tokens only)."""
    if endpoint == EMBEDDINGS:
        prompt = raw.get("prompt_tokens") if raw else None
        count = prompt if isinstance(prompt, int) and prompt > 0 else 0
        return {"input_tokens": count, "output_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                "reasoning_tokens": 0}
    return normalize_usage(endpoint, raw)


class StreamTap:
    """Reads a server-sent-event stream as it passes, event by event: the served model, the usage, and an
    error event. When the gateway asked for OpenAI chat usage on the client's behalf, the usage chunk and
    the `"usage":null` members it adds are taken out, so the client sees the stream it asked for."""

    __slots__ = ("endpoint", "strip_usage", "_buffer", "usage", "model", "tier", "error", "events")

    def __init__(self, endpoint: str, strip_usage: bool) -> None:
        self.endpoint = endpoint
        self.strip_usage = strip_usage
        self._buffer = b""
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.tier: str | None = None
        self.error: str | None = None
        self.events = 0

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to pass on for this chunk: whole events only (a partial one waits for the rest)."""
        data = self._buffer + chunk
        cut = max(data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n"))
        if cut < 0:
            self._buffer = data
            return b""
        end = cut + (4 if data[cut:cut + 4] == b"\r\n\r\n" else 2)
        self._buffer = data[end:]
        complete = data[:end]
        if self.endpoint == CHAT:
            return self._chat(complete)
        for event in complete.split(b"\n\n"):
            if event.strip():
                self._observe(event)
        return complete

    def close(self) -> bytes:
        """Whatever is left when the upstream ends (a last event without its blank line)."""
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            if self.endpoint == CHAT:
                return self._chat(rest)
            self._observe(rest)
        return rest

    # ------------------------------------------------------------ per format
    def _chat(self, complete: bytes) -> bytes:
        out = []
        for event in complete.split(b"\n\n"):
            if not event.strip():
                continue
            self.events += 1
            data = _data(event)
            if data is None or data == b"[DONE]":
                out.append(event)
                continue
            if self.model is None or b'"usage":{' in data or b'"usage": {' in data or b'"error"' in data:
                payload = _json(data)
                if payload is not None:
                    self.model = self.model or _str(payload.get("model"))
                    self.tier = _str(payload.get("service_tier")) or self.tier
                    if isinstance(payload.get("usage"), dict):
                        self.usage = payload["usage"]
                        if self.strip_usage and not payload.get("choices"):
                            continue  # the usage-only chunk the client did not ask for
                    if isinstance(payload.get("error"), dict):
                        self.error = _str(payload["error"].get("code")) or _str(payload["error"].get("type")) or "error"
            if self.strip_usage:
                event = event.replace(b',"usage":null', b"").replace(b', "usage": null', b"")
            out.append(event)
        return b"".join(e + b"\n\n" for e in out)

    def _observe(self, event: bytes) -> None:
        self.events += 1
        name = _event_name(event)
        if name == b"error":
            payload = _json(_data(event))
            err = payload.get("error") if payload else None
            self.error = (_str(err.get("type")) if isinstance(err, dict) else None) or "error"
        elif self.endpoint == RESPONSES:
            self._responses_event(name, event)
        elif self.endpoint == MESSAGES:
            self._messages_event(name, event)

    def _responses_event(self, name: bytes | None, event: bytes) -> None:
        if name not in (b"response.completed", b"response.incomplete", b"response.failed", b"response.created"):
            return
        payload = _json(_data(event))
        response = payload.get("response") if payload else None
        if not isinstance(response, dict):
            return
        self.model = _str(response.get("model")) or self.model
        self.tier = _str(response.get("service_tier")) or self.tier
        if isinstance(response.get("usage"), dict):
            self.usage = response["usage"]
        if name == b"response.failed":
            self.error = "response_failed"

    def _messages_event(self, name: bytes | None, event: bytes) -> None:
        if name == b"message_start":
            payload = _json(_data(event))
            message = payload.get("message") if payload else None
            if isinstance(message, dict):
                self.model = _str(message.get("model")) or self.model
                if isinstance(message.get("usage"), dict):
                    self.usage = merge_delta(self.usage, message["usage"])
                    self.tier = _str(message["usage"].get("service_tier")) or self.tier
        elif name == b"message_delta":
            payload = _json(_data(event))
            if payload and isinstance(payload.get("usage"), dict):
                self.usage = merge_delta(self.usage, payload["usage"])


def _data(event: bytes) -> bytes | None:
    lines = [line[5:].lstrip() for line in event.replace(b"\r\n", b"\n").split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _event_name(event: bytes) -> bytes | None:
    for line in event.replace(b"\r\n", b"\n").split(b"\n"):
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None


def _json(data: bytes | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
