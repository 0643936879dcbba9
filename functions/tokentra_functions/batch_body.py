"""Reading a `{"<name>": [item, ...]}` request body so that one unreadable item costs only itself.

The whole body is parsed at once (pydantic-core's parser, several times faster than the standard
library's). Only when that fails is it taken apart: a tokenizer finds where each item of the list begins
and ends, each item is parsed alone, and an item that still fails (nested too deep, an unpaired surrogate,
broken JSON inside it) becomes an `Unreadable` in its place, naming the key it failed under. The body
around the items must parse, with each item replaced by a placeholder: otherwise it is not JSON at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

__all__ = ["BodyError", "Unreadable", "parse_batch"]

# A JSON string (escapes included) or one structural character; everything else is skipped.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)
_PLACEHOLDER = b"0"


class BodyError(ValueError):
    """The body as a whole is unusable; `code` and the message become a 400 or 422."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Unreadable:
    """An item of the list that could not be parsed on its own: where (a key of the item) and why."""

    field: str
    reason: str


def parse_batch(body: bytes, name: str) -> list[Any]:
    """The items under `name`; an item that cannot be parsed is an Unreadable. Raises BodyError."""
    try:
        payload = from_json(body)
    except ValueError:
        return _taken_apart(body, name)
    return _items(payload, name)


def _items(payload: Any, name: str) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get(name), list):
        raise BodyError(422, "invalid_request", f'{name}: the body must be an object {{"{name}": [...]}}')
    return payload[name]


def _taken_apart(body: bytes, name: str) -> list[Any]:
    top = _children(body, 0, len(body))
    spans = None
    if top is not None:
        for key, start, end in top:
            if key == name:  # the last occurrence wins, as in a whole-body parse
                spans = (start, end)
    items = _children(body, *spans) if spans is not None else None
    if items is None:
        _skeleton_or_raise(body, name, [])
        raise BodyError(422, "invalid_request", f'{name}: the body must be an object {{"{name}": [...]}}')
    _skeleton_or_raise(body, name, [(s, e) for _, s, e in items])
    out: list[Any] = []
    for _, start, end in items:
        try:
            out.append(from_json(body[start:end]))
        except ValueError as exc:
            out.append(_diagnose(body, start, end, exc))
    return out


def _skeleton_or_raise(body: bytes, name: str, spans: list[tuple[int, int]]) -> None:
    """The body with every item replaced by a placeholder must be JSON; else the body is not JSON."""
    parts, at = [], 0
    for start, end in spans:
        parts += [body[at:start], _PLACEHOLDER]
        at = end
    parts.append(body[at:])
    try:
        skeleton = from_json(b"".join(parts))
    except ValueError as exc:
        if "recursion limit" in str(exc):
            raise BodyError(400, "too_deep", "the body nests deeper than JSON parsing allows") from None
        raise BodyError(400, "not_json", "the body is not valid JSON") from None
    _items(skeleton, name)


def _diagnose(body: bytes, start: int, end: int, exc: ValueError) -> Unreadable:
    reason = _reason(exc)
    members = _children(body, start, end)
    for key, s, e in members or ():
        try:
            from_json(body[s:e])
        except ValueError as inner:
            return Unreadable(key if isinstance(key, str) else "event", _reason(inner))
    return Unreadable("event", reason)


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if "recursion limit" in text:
        return "nests deeper than JSON parsing allows"
    if "hex escape" in text:
        return "not valid JSON: a \\u escape is incomplete or an unpaired surrogate, which is not Unicode"
    # pydantic-core says what is wrong and where ("... at line 1 column 14"), never the value.
    return f"not valid JSON: {text}"


def _children(body: bytes, start: int, end: int) -> list[tuple[str | None, int, int]] | None:
    """The direct members of the object or array spanning body[start:end], as (key or None, start, end)
    byte ranges of their values; None when the span is not one object or array."""
    tokens = _TOKEN.finditer(body, start, end)
    first = next(tokens, None)
    if first is None or first.group() not in (b"{", b"["):
        return None
    is_object = first.group() == b"{"
    depth, key, last_string, member_start = 1, None, None, first.end()
    out: list[tuple[str | None, int, int]] = []
    for m in tokens:
        tok = m.group()
        if tok in (b"{", b"["):
            depth += 1
        elif tok in (b"}", b"]"):
            depth -= 1
            if depth == 0:
                if body[member_start:m.start()].strip():
                    out.append((key, member_start, m.start()))
                if next(tokens, None) is not None:
                    return None  # something after the container
                return [(k, *_strip(body, s, e)) for k, s, e in out]
        elif depth == 1 and tok == b",":
            out.append((key, member_start, m.start()))
            member_start, key = m.end(), None
        elif depth == 1 and tok == b":" and is_object:
            key, member_start = _key(last_string), m.end()
        elif depth == 1 and tok.startswith(b'"'):
            last_string = tok
    return None


def _key(token: bytes | None) -> str | None:
    try:
        value = from_json(token) if token is not None else None
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _strip(body: bytes, start: int, end: int) -> tuple[int, int]:
    while start < end and body[start] in b" \t\r\n":
        start += 1
    while end > start and body[end - 1] in b" \t\r\n":
        end -= 1
    return start, end
