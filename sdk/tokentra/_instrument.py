"""Wrappers around a provider's `create`: the hot path. Only clock readings, references and one
non-blocking queue put happen here; the provider's result or exception passes through untouched."""

from __future__ import annotations

import functools
from time import perf_counter_ns
from typing import Any, Callable

from . import _state
from ._observe import Endpoint, begin, snapshot
from ._record import Call, error_code, internal_error, plain_call_type, request_of
from ._routing_client import Router, fallback_kwargs, mark_fallback, take_option
from ._streams import AsyncStreamProxy, SyncStreamProxy
from .budgets import Enforcement
from .cache import CacheClient
from .feedback import _LAST
from .tags import _TAGS

__all__ = ["failed", "instrument_async", "instrument_sync"]


def instrument_sync(fn: Callable[..., Any], provider: str, endpoint: Endpoint,
                    enforcement: Enforcement | None = None, cache: CacheClient | None = None,
                    router: Router | None = None) -> Callable[..., Any]:
    """Wrap a synchronous `create`-like method."""
    if enforcement is None and cache is None and router is None:
        return _plain_sync(fn, provider, endpoint)

    @functools.wraps(fn)
    def create(*args: Any, **kwargs: Any) -> Any:
        option = take_option(kwargs)
        call = begin(provider, endpoint, kwargs)
        if call is None:
            return fn(*args, **kwargs)
        decision = None
        if router is not None and not mark_fallback(call, option) and option is not False:
            decision = router.apply(call, kwargs)  # may raise CallBlocked, deliberately, before the provider
        if cache is not None and not call.stream:  # a hit answers instead of the provider (fails open)
            hit = cache.lookup(call, kwargs)
            if hit is not None:
                return _answered_from_cache(call, hit, endpoint)
        if enforcement is not None:  # may raise BudgetExceeded, deliberately, before the provider is called
            call.reservation_id = enforcement.before_call(call, kwargs)
        call.t0 = perf_counter_ns()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            failed(call, exc)
            if decision is not None and call.routing and call.routing.get("routed_from_model"):
                return create(*args, **fallback_kwargs(kwargs, decision))  # the model asked for, once
            raise
        except BaseException as exc:
            failed(call, exc)
            raise
        if cache is not None and not call.stream:
            cache.store_later(call, kwargs, result)
        return _succeeded(call, result, endpoint, SyncStreamProxy, "__next__")

    return create


def instrument_async(fn: Callable[..., Any], provider: str, endpoint: Endpoint,
                     enforcement: Enforcement | None = None, cache: CacheClient | None = None,
                     router: Router | None = None) -> Callable[..., Any]:
    """Wrap an asynchronous `create`-like method."""

    @functools.wraps(fn)
    async def create(*args: Any, **kwargs: Any) -> Any:
        option = take_option(kwargs)
        call = begin(provider, endpoint, kwargs)
        if call is None:
            return await fn(*args, **kwargs)
        decision = None
        if router is not None and not mark_fallback(call, option) and option is not False:
            decision = router.apply(call, kwargs)  # decided locally: no I/O on the event loop
        if cache is not None and not call.stream:
            hit = await cache.lookup_async(call, kwargs)
            if hit is not None:
                return _answered_from_cache(call, hit, endpoint)
        if enforcement is not None:  # may raise BudgetExceeded, deliberately, before the provider is called
            call.reservation_id = await enforcement.before_call_async(call, kwargs)
        call.t0 = perf_counter_ns()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            failed(call, exc)
            if decision is not None and call.routing and call.routing.get("routed_from_model"):
                return await create(*args, **fallback_kwargs(kwargs, decision))  # the model asked for, once
            raise
        except BaseException as exc:
            failed(call, exc)
            raise
        if cache is not None and not call.stream:
            cache.store_later(call, kwargs, result)
        return _succeeded(call, result, endpoint, AsyncStreamProxy, "__anext__")

    return create


def _plain_sync(fn: Callable[..., Any], provider: str, endpoint: Endpoint) -> Callable[..., Any]:
    """The wrapper of a client without budgets, cache or routing.

    A non-streamed call's record is a PlainCall: before the provider is called, the caller's thread only
    keeps references (the wrapper's own kwargs dict, the tags context, the call's tags and prompt list
    copied in C) and reads the monotonic clock; after it, the latency, the response and one deque append.
    There is no Python frame but this one on the way: a call after an idle gap, when little of the SDK is
    in the CPU's caches, pays several microseconds for each. Model, format, merged tags, wall-clock time
    and everything about the response are derived on the sender thread (PlainCall.to_event).
    Streams, recording switched off, the first call of a process and unusual tag arguments take the
    general path through begin().
    """
    kind = plain_call_type(provider, endpoint.name, endpoint.observe_response)
    prompt_param, system_param = endpoint.prompt_param, endpoint.system_param

    @functools.wraps(fn)
    def create(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("tokentra_routing", None)  # routing is off for this client: the option means nothing
        call_tags = kwargs.pop("tokentra_tags", None)
        config = _state._config
        if (config is None or not config.enabled or kwargs.get("stream") is True
                or (call_tags is not None and type(call_tags) is not dict)):
            if call_tags is not None:
                kwargs["tokentra_tags"] = call_tags
            return _begun_sync(fn, args, kwargs, provider, endpoint)
        try:
            call = kind()
            call.kwargs = kwargs  # built for this call by the ** above: nobody else holds or changes it
            call.tags = _TAGS.get()  # never mutated once set (see tags.py)
            if call_tags:
                call.call_tags = call_tags.copy()
            # A copy survives the caller's `messages.append(reply)` after the call.
            prompt = kwargs.get(prompt_param)
            call.messages = prompt.copy() if type(prompt) is list else snapshot(prompt)
            if system_param is not None:
                system = kwargs.get(system_param)
                call.system = system.copy() if type(system) is list else snapshot(system)
            _LAST.set(call)  # for last_request_id()
        except Exception:
            internal_error()
            return fn(*args, **kwargs)
        call.t0 = t0 = perf_counter_ns()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            failed(call, exc)
            raise
        try:
            call.latency_ns = perf_counter_ns() - t0
            call.response = result
            sender = _state._sender
            if sender is not None and len(sender.hot_queue) < sender.hot_limit:
                sender.hot_queue.append(call)  # all that submit() would do here (see Sender.hot_limit)
            else:
                _state.submit(call)
        except Exception:
            internal_error()
        return result

    return create


def _begun_sync(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], provider: str,
                endpoint: Endpoint) -> Any:
    """A plainly wrapped call on the general path: streamed, not recorded, or with unusual arguments."""
    call = begin(provider, endpoint, kwargs)
    if call is None:
        return fn(*args, **kwargs)
    call.t0 = perf_counter_ns()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        failed(call, exc)
        raise
    return _succeeded(call, result, endpoint, SyncStreamProxy, "__next__")


def _succeeded(call: Call, result: Any, endpoint: Endpoint, stream_proxy: Any, next_method: str) -> Any:
    try:
        if call.stream and hasattr(result, next_method):
            return stream_proxy(result, call, endpoint.observe_event)
        call.latency_ns = perf_counter_ns() - call.t0
        endpoint.observe_response(call, result)
        _state.submit(call)
    except Exception:
        internal_error()
    return result


def _answered_from_cache(call: Call, response: Any, endpoint: Endpoint) -> Any:
    """Record a call the cache answered: no provider tokens, zero latency to the provider."""
    try:
        call.t0 = perf_counter_ns()
        endpoint.observe_response(call, response)
        call.usage = None  # the stored answer's usage was paid for by the call that stored it
        call.latency_ns = 0
        _state.submit(call)
    except Exception:
        internal_error()
    return response


def failed(call: Call, exc: BaseException) -> None:
    """Record a call that raised."""
    try:
        call.latency_ns = perf_counter_ns() - call.t0
        call.status = "error"
        call.error_code = error_code(exc)
        call.request = request_of(exc)
        _state.submit(call)
    except Exception:
        internal_error()
