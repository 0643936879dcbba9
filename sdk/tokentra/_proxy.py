"""A transparent proxy: every attribute, isinstance check and context manager goes to the target,
except the few attributes a proxy chooses to replace."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["ObjectProxy"]

Hook = Callable[[Any], Any]


class _Storage:
    # The instance dict holds the hooks' replacements once made. Attribute lookup finds them there in C,
    # so `client.chat.completions.create` runs no Python code of the proxy's, which matters most for a
    # call after an idle gap: each Python frame on the way costs several microseconds of cache misses.
    __slots__ = ("__dict__", "__weakref__")


class ObjectProxy(_Storage):
    """Forwards to `target`; `hooks` maps attribute names to factories of their replacements."""

    __slots__ = ("_tt_target", "_tt_hooks")

    def __init__(self, target: Any, hooks: dict[str, Hook] | None = None) -> None:
        object.__setattr__(self, "_tt_target", target)
        object.__setattr__(self, "_tt_hooks", hooks or {})

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the proxy itself lacks, i.e. everything of the target's, and hooked
        # names until their replacement is made.
        hook = self._tt_hooks.get(name)
        value = getattr(self._tt_target, name)
        if hook is None:
            return value
        replacement = hook(value)
        object.__setattr__(self, name, replacement)  # into the instance dict: found there from now on
        return replacement

    def __setattr__(self, name: str, value: Any) -> None:
        self._tt_forget(name)
        setattr(self._tt_target, name, value)

    def __delattr__(self, name: str) -> None:
        self._tt_forget(name)
        delattr(self._tt_target, name)

    def _tt_forget(self, name: str) -> None:
        # Only hooked names are ever stored on the proxy; anything else is the target's business.
        if name in self._tt_hooks:
            try:
                object.__delattr__(self, name)
            except AttributeError:
                pass

    # The proxy's own dict only caches replacements; code reading the client's attributes sees the target's.
    @property
    def __dict__(self) -> Any:  # type: ignore[override]  # noqa: D105
        return self._tt_target.__dict__

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
