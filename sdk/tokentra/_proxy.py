"""A transparent proxy: every attribute, isinstance check and context manager goes to the target,
except the few attributes a proxy chooses to replace."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["ObjectProxy"]

Hook = Callable[[Any], Any]


class ObjectProxy:
    """Forwards to `target`; `hooks` maps attribute names to factories of their replacements."""

    __slots__ = ("_tt_target", "_tt_hooks", "_tt_cache", "__weakref__")

    def __init__(self, target: Any, hooks: dict[str, Hook] | None = None) -> None:
        object.__setattr__(self, "_tt_target", target)
        object.__setattr__(self, "_tt_hooks", hooks or {})
        object.__setattr__(self, "_tt_cache", {})

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the proxy itself lacks, i.e. everything of the target's.
        cache = self._tt_cache
        try:
            return cache[name]
        except KeyError:
            pass
        hook = self._tt_hooks.get(name)
        value = getattr(self._tt_target, name)
        if hook is None:
            return value
        replacement = cache[name] = hook(value)
        return replacement

    def __setattr__(self, name: str, value: Any) -> None:
        self._tt_cache.pop(name, None)
        setattr(self._tt_target, name, value)

    def __delattr__(self, name: str) -> None:
        self._tt_cache.pop(name, None)
        delattr(self._tt_target, name)

    # isinstance(proxy, openai.OpenAI) must stay true for code that checks the client's type.
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return type(self._tt_target)

    @property
    def __wrapped__(self) -> Any:
        return self._tt_target

    def __dir__(self) -> Any:
        return dir(self._tt_target)

    def __repr__(self) -> str:
        return repr(self._tt_target)

    def __eq__(self, other: Any) -> bool:
        return bool(self._tt_target == getattr(other, "_tt_target", other))

    def __hash__(self) -> int:
        return hash(self._tt_target)
