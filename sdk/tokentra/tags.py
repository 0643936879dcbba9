"""Attribution tags carried in a context variable, so they follow threads' and tasks' own context."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from types import TracebackType
from typing import Any

__all__ = ["current_tags", "merge_tags", "tags"]

_EMPTY: Mapping[str, Any] = {}
_UNSET: Any = object()
# Values are never mutated once set: entering a scope builds a new dict, so readers need no copy.
_TAGS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("tokentra_tags", default=_EMPTY)


def merge_tags(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` updated by `extra`, where a None value removes the key."""
    merged = dict(base)
    for key, value in extra.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[str(key)] = value
    return merged


def current_tags() -> dict[str, Any]:
    """The tags in force here, as a new dict."""
    return dict(_TAGS.get())


class tags:  # noqa: N801 - used like a function: `with tokentra.tags(feature="chat"):`
    """Attach attribution tags to every wrapped call made inside the block.

    Scopes nest (inner values win, None removes a key) and are safe across threads and asyncio tasks.
    """

    __slots__ = ("_values", "_tokens")

    def __init__(
        self,
        *,
        feature: str | None = _UNSET,
        user_id: str | None = _UNSET,
        team: str | None = _UNSET,
        project: str | None = _UNSET,
        **extra: Any,
    ) -> None:
        named = {"feature": feature, "user_id": user_id, "team": team, "project": project}
        # A sentinel, not None, marks "not given": None is how a nested scope removes a tag.
        self._values = {k: v for k, v in named.items() if v is not _UNSET}
        self._values.update(extra)
        self._tokens: list[contextvars.Token[Mapping[str, Any]]] = []

    def __enter__(self) -> dict[str, Any]:
        merged = merge_tags(_TAGS.get(), self._values)
        self._tokens.append(_TAGS.set(merged))
        return dict(merged)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _TAGS.reset(self._tokens.pop())

    async def __aenter__(self) -> dict[str, Any]:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def live_tags() -> Mapping[str, Any]:
    """The live tags mapping, for the hot path: callers must not mutate it."""
    return _TAGS.get()
