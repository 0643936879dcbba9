"""Stream proxies: watch each chunk for first output and usage, record the call when the stream ends."""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any, Callable

from . import _state
from ._proxy import ObjectProxy
from ._record import Call, error_code, internal_error, request_of

__all__ = ["AsyncStreamProxy", "SyncStreamProxy", "end_stream"]

CLOSED_EARLY = "stream_closed_early"


def end_stream(call: Call, exc: BaseException | None, exhausted: bool) -> None:
    """Record a stream's outcome: its error, a normal end, or a close before the provider finished."""
    try:
        call.latency_ns = perf_counter_ns() - call.t0
        if exc is not None:
            call.status = "error"
            call.error_code = error_code(exc)
            call.request = request_of(exc) or call.request
        elif not (exhausted or call.complete):
            # Closed before the final event: output tokens were spent but never reported.
            call.status = "error"
            call.error_code = CLOSED_EARLY
        _state.submit(call)
    except Exception:
        internal_error()


class _StreamProxy(ObjectProxy):
    __slots__ = ("_tt_call", "_tt_observe", "_tt_done")

    def __init__(self, target: Any, call: Call, observe: Callable[[Call, Any], None]) -> None:
        super().__init__(target)
        object.__setattr__(self, "_tt_call", call)
        object.__setattr__(self, "_tt_observe", observe)
        object.__setattr__(self, "_tt_done", False)
        try:
            call.request = target.response.request
        except Exception:  # noqa: S110 - usage bookkeeping must never break the caller's stream
            pass  # only used for the retry count

    def _tt_end(self, exc: BaseException | None = None, exhausted: bool = False) -> None:
        if not self._tt_done:
            object.__setattr__(self, "_tt_done", True)
            end_stream(self._tt_call, exc, exhausted)

    def __del__(self) -> None:
        # A stream dropped without being read to the end or closed is still a call that cost tokens.
        try:
            if not self._tt_done:
                self._tt_end()
        except Exception:  # noqa: S110 - usage bookkeeping must never break the caller's stream
            pass


class SyncStreamProxy(_StreamProxy):
    """Wraps `openai.Stream` / `anthropic.Stream`."""

    __slots__ = ()

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            item = self._tt_target.__next__()
        except StopIteration:
            self._tt_end(exhausted=True)
            raise
        except BaseException as exc:
            self._tt_end(exc)
            raise
        try:  # inlined rather than a helper call: this runs once per chunk
            self._tt_observe(self._tt_call, item)
        except Exception:
            internal_error()
        return item

    def __enter__(self) -> SyncStreamProxy:
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._tt_target.__exit__(*exc_info)
        finally:
            self._tt_end()

    def close(self) -> None:
        try:
            self._tt_target.close()
        finally:
            self._tt_end()


class AsyncStreamProxy(_StreamProxy):
    """Wraps `openai.AsyncStream` / `anthropic.AsyncStream`."""

    __slots__ = ()

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._tt_target.__anext__()
        except StopAsyncIteration:
            self._tt_end(exhausted=True)
            raise
        except BaseException as exc:
            self._tt_end(exc)
            raise
        try:
            self._tt_observe(self._tt_call, item)
        except Exception:
            internal_error()
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._tt_target.__aexit__(*exc_info)
        finally:
            self._tt_end()

    async def close(self) -> None:
        try:
            await self._tt_target.close()
        finally:
            self._tt_end()
