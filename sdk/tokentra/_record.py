"""One wrapped call: what the hot path captures, and the event the sender thread builds from it."""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from time import perf_counter_ns
from typing import Any, Callable

from . import _state
from ._prompt import extract_texts, hash_text
from ._signals import FORMAT_PARAMS, answer_text, output_overhead, requested_format
from ._usage import merge_delta, normalize_usage, usage_dict
from .classifier import classify
from .tags import merge_tags

__all__ = ["Call", "PlainCall", "error_code", "internal_error", "plain_call_type", "request_id_of"]

_log = logging.getLogger("tokentra")
_SCALARS = (str, int, float, bool)
# Only for giving a call its id: taken by the sender thread and by last_request_id(), never by the hot path.
_id_lock = threading.Lock()


class Call:
    """Facts about one provider call. The hot path only stores references and clock readings;
    hashing, classification and usage conversion wait for `to_event()` on the sender thread."""

    # No __slots__: the fields below are class-level defaults, so a new call stores only what it knows at
    # the start (eight attributes), and the rest only when something sets them.
    request_id: bytes | None = None  # drawn on first use (request_id_of): reading the OS's randomness is a system call
    t0 = 0  # set by the wrapper just before the provider call, so latency excludes the SDK
    response_model: Any = None
    usage: Any = None
    usage_delta: Any = None
    service_tier: Any = None
    status = "success"
    error_code: str | None = None
    request: Any = None
    latency_ns = 0
    ttft_ns: int | None = None
    complete = False
    reservation_id: str | None = None  # strict budget enforcement (budgets.py)
    format_param: Any = None  # the request's output format parameter (_signals.FORMAT_PARAMS)
    response: Any = None  # a finished answer, measured (never sent) on the sender thread
    cache: dict[str, Any] | None = None  # set when TokenTRA's semantic cache answered (cache.py)
    routing: dict[str, Any] | None = None  # the routing decision's fields (_routing_client.py)
    # Set instead of reading the response on the caller's thread: to_event() calls it with `response`.
    observe: Callable[[Call, Any], None] | None = None

    def __init__(self, provider: str, endpoint: str, model: Any, stream: bool, tags: Mapping[str, Any],
                 messages: Any, system: Any) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.model = model
        self.stream = stream
        self.tags = tags
        self.started_at = time.time()
        self.messages = messages
        self.system = system

    def to_event(self) -> dict[str, Any]:
        """The ingest event. Runs on the sender thread; prompt text is hashed here and goes no further."""
        if self.observe is not None:
            observe, self.observe = self.observe, None
            observe(self, self.response)
        texts = extract_texts(self.endpoint, self.messages, self.system)
        raw = usage_dict(self.usage)
        if self.usage_delta is not None:
            raw = merge_delta(raw, usage_dict(self.usage_delta))
        tier = self.service_tier
        if tier is None and raw is not None:
            tier = raw.get("service_tier")
        event: dict[str, Any] = {
            "request_id": request_id_of(self),
            "provider": self.provider,
            "model": _text(self.response_model) or _text(self.model) or "unknown",
            "endpoint": self.endpoint,
        }
        event.update(normalize_usage(self.endpoint, raw))
        event.update({
            "service_tier": _text(tier),
            "latency_ms": round(self.latency_ns / 1e6),
            "time_to_first_token_ms": None if self.ttft_ns is None else round(self.ttft_ns / 1e6),
            "status": self.status,
            "error_code": self.error_code,
            "retry_count": _retry_count(self.request),
            "is_streaming": self.stream,
            "prompt_hash": hash_text(texts.conversation),
            "system_prompt_hash": hash_text(texts.system),
            "task_type": classify(texts.last_user or texts.conversation, texts.system),
            "metadata": _metadata(self.tags),
            "timestamp": _iso_utc(self.started_at),
            "raw_usage": raw,
        })
        if self.reservation_id is not None:
            event["reservation_id"] = self.reservation_id
        if self.cache is not None:  # answered from the cache: no provider tokens, what it saved
            event["cache_hit"] = True
            event.update({k: v for k, v in self.cache.items() if v is not None})
        if self.routing is not None:
            event.update({k: v for k, v in self.routing.items() if v is not None})
        event.update(self._signals(texts))
        return event

    def _signals(self, texts: Any) -> dict[str, Any]:
        """Numbers about the prompt and answer for the recommendations; each only when measured."""
        signals: dict[str, Any] = {}
        fmt = requested_format(self.format_param)
        overhead = None
        if self.response is not None and self.status == "success":
            overhead = output_overhead(answer_text(self.endpoint, self.response))
        if overhead is not None:
            signals["output_overhead"] = overhead
            fmt = fmt or "text"
        if fmt is not None:
            signals["response_format"] = fmt
        prefix_hash = hash_text(texts.prefix)
        total = len(texts.system) + len(texts.conversation) + 1
        if prefix_hash is not None:
            signals["prefix_hash"] = prefix_hash
            signals["prefix_share"] = round(min(len(texts.prefix) / total, 1.0), 4)
        return signals


class PlainCall(Call):
    """A non-streamed call of a plainly wrapped client, as the caller's thread leaves it: the request's
    keyword arguments (a dict of the wrapper's own), the tags in force, a copy of the prompt list, the start
    clock reading, the latency and the response, all by reference. Everything Call.__init__ and the
    response's observer would set is derived from those by `to_event()`, on the sender thread.

    Each endpoint has its subclass (`plain_call_type`), which carries the endpoint's facts as class
    attributes, so the caller's thread sets none of them.
    """

    # Made without running any Python code: after an idle gap each Python frame on the caller's thread
    # costs several microseconds of cache misses, and the wrapper sets the few fields itself.
    __init__ = object.__init__
    stream = False
    system: Any = None
    call_tags: dict[str, Any] | None = None  # the call's own tokentra_tags, merged on the sender thread
    kwargs: dict[str, Any]
    # Set per endpoint on the subclass.
    format_params: tuple[str, ...] = ()
    observe_response: Callable[[Call, Any], None]

    def to_event(self) -> dict[str, Any]:
        kwargs = self.kwargs
        self.model = kwargs.get("model")
        if self.call_tags:
            self.tags = merge_tags(self.tags, self.call_tags)
        for name in self.format_params:
            if name in kwargs:
                self.format_param = kwargs[name]
                break
        # Only the monotonic clock was read on the caller's thread; the wall-clock start is the current
        # wall clock less the time since then (the event records milliseconds).
        self.started_at = time.time() - (perf_counter_ns() - self.t0) / 1e9
        if self.status == "success":
            self.observe_response(self, self.response)
        return super().to_event()


_PLAIN_TYPES: dict[tuple[str, str], type[PlainCall]] = {}


def plain_call_type(provider: str, endpoint: str, observe_response: Callable[[Call, Any], None]) -> type[PlainCall]:
    """The PlainCall subclass of one provider's endpoint (one per pair, however many clients are wrapped)."""
    kind = _PLAIN_TYPES.get((provider, endpoint))
    if kind is None:
        kind = _PLAIN_TYPES[(provider, endpoint)] = type("PlainCall", (PlainCall,), {
            "__module__": __name__, "provider": provider, "endpoint": endpoint,
            "format_params": FORMAT_PARAMS[endpoint], "observe_response": staticmethod(observe_response),
        })
    return kind


def request_id_of(call: Call) -> str:
    """The call's request id, drawn once: the sender's event and last_request_id() name the same id, and
    every retry of the ingest request carries it, so the server dedups it."""
    raw = call.request_id
    if raw is None:
        with _id_lock:
            raw = call.request_id
            if raw is None:
                raw = call.request_id = os.urandom(16)
    return str(uuid.UUID(bytes=raw, version=4))


def error_code(exc: BaseException) -> str:
    """The HTTP status of a failed answer, else the provider's error code or type, else the exception's type.

    An error inside a stream arrives on a 200 response, so its status says nothing and is skipped.
    """
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        return str(status)
    body = getattr(exc, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    candidates = (getattr(exc, "code", None), getattr(exc, "type", None),
                  inner.get("type") if isinstance(inner, dict) else None)
    for value in candidates:
        if isinstance(value, str) and value:
            return value[:100]
    return type(exc).__name__[:100]


def request_of(exc: BaseException) -> Any:
    """The HTTP request behind a provider exception, for the retry count the client stamped on it."""
    response = getattr(exc, "response", None)
    if response is not None:
        return getattr(response, "request", None)
    try:
        return getattr(exc, "request", None)
    except Exception:  # httpx raises RuntimeError when no request is attached
        return None


def internal_error() -> None:
    """Count and log an SDK bug that was swallowed to keep the caller's call intact."""
    _log.debug("tokentra: internal error while recording a call", exc_info=True)
    try:
        _state.get_sender().count("internal_errors")
    except Exception:  # noqa: S110 - counting must never be the thing that fails
        pass


def _retry_count(request: Any) -> int:
    # The provider clients stamp each attempt with how many retries came before it.
    if request is None:
        return 0
    try:
        return int(request.headers.get("x-stainless-retry-count") or 0)
    except Exception:
        return 0


def _metadata(tags: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): (v if v is None or isinstance(v, _SCALARS) else str(v)) for k, v in tags.items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso_utc(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
