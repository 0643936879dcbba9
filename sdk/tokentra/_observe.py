"""Per-endpoint knowledge: which parameters hold the prompt, and where responses and stream events
carry the model, usage and first output. Everything here runs on the caller's thread: keep it cheap."""

from __future__ import annotations

from collections.abc import Mapping
from time import perf_counter_ns
from typing import Any, Callable, NamedTuple

from . import _state
from ._record import Call, internal_error
from ._signals import FORMAT_PARAMS
from .feedback import _LAST
from .tags import _TAGS, merge_tags

__all__ = ["ENDPOINTS", "Endpoint", "ask_for_stream_usage", "begin", "snapshot"]

_TERMINAL_RESPONSE_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class Endpoint(NamedTuple):
    name: str
    prompt_param: str  # the parameter holding the conversation
    system_param: str | None  # a separate system prompt parameter, if the API has one
    observe_response: Callable[[Call, Any], None]
    observe_event: Callable[[Call, Any], None]


def begin(provider: str, endpoint: Endpoint, kwargs: dict[str, Any], helper: bool = False) -> Call | None:
    """Start recording a call, editing `kwargs` in place; None when recording is off or fails.

    `tokentra_tags` is always removed, so the provider never sees it. `helper` marks the clients'
    `.stream()` helpers, which stream without a `stream=True` argument.
    """
    call_tags = kwargs.pop("tokentra_tags", None)
    try:
        # Inline rather than through helpers: each Python call here is paid on every wrapped call.
        config = _state._config
        if not (config if config is not None else _state.get_config()).enabled:
            return None
        tags = _TAGS.get()
        if call_tags and isinstance(call_tags, Mapping):
            tags = merge_tags(tags, call_tags)
        stream = helper or kwargs.get("stream") is True
        if stream and endpoint.name == "chat.completions":
            ask_for_stream_usage(kwargs)
        # A shallow copy is enough to survive the usual `messages.append(reply)` after the call; an
        # iterator is left alone rather than consumed before the provider reads it.
        prompt = kwargs.get(endpoint.prompt_param)
        if type(prompt) is list:
            prompt = prompt.copy()
        elif not (prompt is None or isinstance(prompt, (str, tuple))):
            prompt = snapshot(prompt)
        system = snapshot(kwargs.get(endpoint.system_param)) if endpoint.system_param else None
        call = Call(provider, endpoint.name, kwargs.get("model"), stream, tags, prompt, system)
        for name in FORMAT_PARAMS[endpoint.name]:
            if name in kwargs:
                call.format_param = kwargs[name]
                break
        _LAST.set(call)  # for last_request_id()
        return call
    except Exception:
        internal_error()
        return None


def ask_for_stream_usage(kwargs: dict[str, Any]) -> None:
    # OpenAI only reports usage in a stream when asked; an explicit include_usage from the caller wins.
    options = kwargs.get("stream_options")
    if isinstance(options, Mapping):
        if "include_usage" not in options:
            kwargs["stream_options"] = {**options, "include_usage": True}
    else:
        kwargs["stream_options"] = {"include_usage": True}


def snapshot(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, (str, tuple)) or value is None:
        return value
    return None


def _first_output(call: Call) -> None:
    if call.ttft_ns is None:
        call.ttft_ns = perf_counter_ns() - call.t0


def _observe_model_response(call: Call, response: Any) -> None:
    call.response = response
    call.response_model = getattr(response, "model", None)
    call.usage = getattr(response, "usage", None)
    call.service_tier = getattr(response, "service_tier", None)
    call.complete = True


def _observe_chat_chunk(call: Call, chunk: Any) -> None:
    if call.ttft_ns is None and getattr(chunk, "choices", None):
        _first_output(call)
    if call.response_model is None:
        call.response_model = getattr(chunk, "model", None)
    tier = getattr(chunk, "service_tier", None)
    if tier is not None:
        call.service_tier = tier
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        call.usage = usage
        call.complete = True


def _observe_responses_event(call: Call, event: Any) -> None:
    kind = getattr(event, "type", None)
    if not isinstance(kind, str):
        return
    if call.ttft_ns is None and (kind == "response.output_item.added" or kind.endswith(".delta")):
        _first_output(call)
    if kind in _TERMINAL_RESPONSE_EVENTS:
        response = getattr(event, "response", None)
        _observe_model_response(call, response)
        if kind == "response.failed":
            call.status = "error"
            error = getattr(response, "error", None)
            call.error_code = getattr(error, "code", None) or kind
    elif kind == "response.created":
        call.response_model = getattr(getattr(event, "response", None), "model", None)
    elif kind == "error":
        call.status = "error"
        call.error_code = getattr(event, "code", None) or "error"


def _observe_anthropic_event(call: Call, event: Any) -> None:
    kind = getattr(event, "type", None)
    if kind == "message_start":
        message = getattr(event, "message", None)
        call.response_model = getattr(message, "model", None)
        call.usage = getattr(message, "usage", None)
    elif kind in ("content_block_start", "content_block_delta"):
        if call.ttft_ns is None:
            _first_output(call)
    elif kind == "message_delta":
        call.usage_delta = getattr(event, "usage", None)
    elif kind == "message_stop":
        call.complete = True


ENDPOINTS = {
    "chat.completions": Endpoint("chat.completions", "messages", None, _observe_model_response,
                                 _observe_chat_chunk),
    "responses": Endpoint("responses", "input", "instructions", _observe_model_response,
                          _observe_responses_event),
    "messages": Endpoint("messages", "messages", "system", _observe_model_response, _observe_anthropic_event),
}

