"""The clients' `.stream()` helpers (`messages.stream`, `chat.completions.stream`, `responses.stream`).

Each returns a manager whose `with` block sends the request and yields a helper stream that reads the
same raw stream `create(stream=True)` returns, from its `_raw_stream` attribute. Swapping in our stream
proxy there lets one observer serve both styles; the helper's own events and methods are untouched.
"""

from __future__ import annotations

import functools
from time import perf_counter_ns
from typing import Any, Callable

from ._instrument import failed
from ._observe import Endpoint, begin
from ._proxy import ObjectProxy
from ._record import Call, internal_error
from ._streams import AsyncStreamProxy, SyncStreamProxy

__all__ = ["instrument_stream_helper"]


def instrument_stream_helper(fn: Callable[..., Any], provider: str, endpoint: Endpoint,
                             is_async: bool) -> Callable[..., Any]:
    """Wrap a `.stream()` helper; it returns its manager at once, on sync and async clients alike."""

    @functools.wraps(fn)
    def stream(*args: Any, **kwargs: Any) -> Any:
        call = begin(provider, endpoint, kwargs, helper=True)
        manager = fn(*args, **kwargs)
        if call is None:
            return manager
        return (_AsyncManager if is_async else _SyncManager)(manager, call, endpoint)

    return stream


class _Manager(ObjectProxy):
    __slots__ = ("_tt_call", "_tt_endpoint", "_tt_raw")

    def __init__(self, manager: Any, call: Call, endpoint: Endpoint) -> None:
        super().__init__(manager)
        object.__setattr__(self, "_tt_call", call)
        object.__setattr__(self, "_tt_endpoint", endpoint)
        object.__setattr__(self, "_tt_raw", None)

    def _tt_attach(self, helper: Any, proxy_class: Any) -> Any:
        try:
            raw = proxy_class(helper._raw_stream, self._tt_call, self._tt_endpoint.observe_event)
            helper._raw_stream = raw
            object.__setattr__(self, "_tt_raw", raw)
        except Exception:
            internal_error()
        return helper

    def _tt_finish(self) -> None:
        # The helper may close its HTTP response without going through our proxy: end the record here.
        raw = self._tt_raw
        if raw is not None:
            raw._tt_end()


class _SyncManager(_Manager):
    __slots__ = ()

    def __enter__(self) -> Any:
        self._tt_call.t0 = perf_counter_ns()
        try:
            helper = self._tt_target.__enter__()
        except BaseException as exc:
            failed(self._tt_call, exc)
            raise
        return self._tt_attach(helper, SyncStreamProxy)

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._tt_target.__exit__(*exc_info)
        finally:
            self._tt_finish()


class _AsyncManager(_Manager):
    __slots__ = ()

    async def __aenter__(self) -> Any:
        self._tt_call.t0 = perf_counter_ns()
        try:
            helper = await self._tt_target.__aenter__()
        except BaseException as exc:
            failed(self._tt_call, exc)
            raise
        return self._tt_attach(helper, AsyncStreamProxy)

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._tt_target.__aexit__(*exc_info)
        finally:
            self._tt_finish()
