"""Numbers measured on the caller's machine for TokenTRA's recommendations; text never leaves it.

- `response_format`: the output format the call asked for (`text`, `json_object`, `json_schema`).
- `output_overhead`: the share of the answer's characters outside the compact JSON it contains
  (indentation, code fences, prose around it); None when the answer holds no JSON.
All of it runs on the sender thread, from references the hot path kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["FORMAT_PARAMS", "answer_text", "output_overhead", "requested_format"]

# Per endpoint, the request parameters that name an output format.
FORMAT_PARAMS = {
    "chat.completions": ("response_format",),
    "responses": ("text", "text_format"),
    "messages": ("output_format",),
}
_FORMATS = ("text", "json_object", "json_schema")
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n?```", re.DOTALL)


def requested_format(param: Any) -> str | None:
    """The format a request's format parameter names; a schema class (`parse()`) is json_schema."""
    if param is None:
        return None
    if isinstance(param, type):
        return "json_schema"
    if isinstance(param, Mapping):
        inner = param.get("format")  # Responses API: text={"format": {...}}
        kind = (inner if isinstance(inner, Mapping) else param).get("type")
        return kind if kind in _FORMATS else None
    return None


def answer_text(endpoint: str, response: Any) -> str | None:
    """The text of a finished, non-streamed answer (all choices or text blocks), or None."""
    try:
        if endpoint == "chat.completions":
            parts = [_get(_get(c, "message"), "content") for c in _get(response, "choices") or ()]
        elif endpoint == "responses":
            parts = [_get(p, "text") for item in _get(response, "output") or ()
                     if _get(item, "type") == "message" for p in _get(item, "content") or ()
                     if _get(p, "type") == "output_text"]
        else:
            parts = [_get(b, "text") for b in _get(response, "content") or () if _get(b, "type") == "text"]
    except TypeError:
        return None
    texts = [p for p in parts if isinstance(p, str)]
    return "".join(texts) if texts else None


def output_overhead(text: str | None) -> float | None:
    """1 - (compact JSON length / answer length) for an answer that is JSON, whole or in a code fence."""
    if not text or not text.strip():
        return None
    value = _json_container(text.strip())
    if value is None:
        for match in _FENCE.finditer(text):
            value = _json_container(match.group(1).strip())
            if value is not None:
                break
    if value is None:
        return None
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return round(max(0.0, 1 - len(compact) / len(text)), 4)


def _json_container(text: str) -> Any:
    # Only an object or array counts: a bare number or string is not structured output.
    if not text or text[0] not in "{[":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)
