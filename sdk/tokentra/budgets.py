"""Budget enforcement before a provider call: `tokentra.wrap(client, enforce_budgets="strict"|"eventual")`.

strict    reserves the call's maximum cost (POST /budget/reserve) before every call; the usage event
          then carries the reservation id, which commits it. A hard budget is never overspent.
eventual  asks whether the attribution's hard budgets still have room (POST /budget/check) and caches
          the answer for `cache_seconds`, so most calls add no round trip; overshoot is bounded by
          concurrent calls times the largest call.

Either mode raises `tokentra.BudgetExceeded` before the provider is called when a hard budget has no
room. When TokenTRA cannot be reached the call goes ahead (fail_open=True, the default) or raises
BudgetExceeded (fail_open=False). This is the only exception the SDK ever raises into a call.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from . import _state

__all__ = ["BudgetExceeded", "Enforcement"]

_MODES = ("strict", "eventual")
# Parameters that cap a call's output, per endpoint (OpenAI chat accepts either of the first two).
_MAX_TOKEN_PARAMS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_TAGS = ("team", "project", "feature", "user_id")


class BudgetExceeded(Exception):
    """A hard budget has no room for this call (or TokenTRA is unreachable and fail_open is False).

    The provider was not called. `budget_id` and `remaining` (USD) say which budget and how much is left.
    """

    def __init__(self, message: str, budget_id: str | None = None, remaining: float | None = None,
                 mode: str = "strict", unreachable: bool = False) -> None:
        super().__init__(message)
        self.budget_id = budget_id
        self.remaining = remaining
        self.mode = mode
        self.unreachable = unreachable


class _Unreachable(Exception):
    pass


class Enforcement:
    """How one wrapped client enforces budgets; shared by every call made through it."""

    __slots__ = ("mode", "fail_open", "cache_seconds", "timeout", "_cache", "_lock")

    def __init__(self, mode: str, fail_open: bool = True, cache_seconds: float = 5.0,
                 timeout: float = 2.0) -> None:
        if mode not in _MODES:
            raise ValueError(f"enforce_budgets must be one of {_MODES}, not {mode!r}")
        self.mode = mode
        self.fail_open = fail_open
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._cache: dict[tuple, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the two entry points
    def before_call(self, call: Any, kwargs: Mapping[str, Any]) -> str | None:
        """Raise BudgetExceeded, or return the reservation id (strict) to put on the usage event.

        `call` is the SDK's record of the call being made (provider, endpoint, model, tags, prompt)."""
        body, key = self._request(call, kwargs)
        if self.mode == "eventual":
            cached = self._cached(key)
            if cached is None:
                cached = self._remember(key, self._call(lambda: self._post_sync("/budget/check", body)))
            return self._judge(cached)
        return self._judge(self._call(lambda: self._post_sync("/budget/reserve", body)))

    async def before_call_async(self, call: Any, kwargs: Mapping[str, Any]) -> str | None:
        body, key = self._request(call, kwargs)
        path = "/budget/check" if self.mode == "eventual" else "/budget/reserve"
        if self.mode == "eventual":
            cached = self._cached(key)
            if cached is not None:
                return self._judge(cached)
        try:
            answer = await self._post_async(path, body)
        except _Unreachable:
            answer = None
        if self.mode == "eventual" and answer is not None:
            self._remember(key, answer)
        return self._judge(answer)

    # ------------------------------------------------------------ internals
    def _request(self, call: Any, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], tuple]:
        attribution = {k: str(call.tags[k]) for k in _TAGS if call.tags.get(k) is not None}
        model_name = call.model if isinstance(call.model, str) else "unknown"
        body: dict[str, Any] = {"provider": call.provider, "model": model_name, **attribution}
        if self.mode == "strict":
            body["input_tokens"] = _estimate_tokens(call.endpoint, call.messages, call.system)
            for name in _MAX_TOKEN_PARAMS:
                value = kwargs.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    body["max_tokens"] = value
                    break
        return body, (model_name,) + tuple(attribution.get(k) for k in _TAGS)

    def _cached(self, key: tuple) -> dict[str, Any] | None:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def _remember(self, key: tuple, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        if answer is not None:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (time.monotonic() + self.cache_seconds, answer)
        return answer

    def _call(self, post: Any) -> dict[str, Any] | None:
        try:
            return post()
        except _Unreachable:
            return None

    def _judge(self, answer: dict[str, Any] | None) -> str | None:
        """None answer = TokenTRA unreachable."""
        if answer is None:
            if self.fail_open:
                return None
            raise BudgetExceeded("TokenTRA is unreachable and budgets fail closed", mode=self.mode,
                                 unreachable=True)
        if not answer.get("allowed", True):
            remaining = answer.get("remaining")
            raise BudgetExceeded(
                f"budget {answer.get('budget_id')} has no room for this call ({self.mode} enforcement)",
                budget_id=answer.get("budget_id"),
                remaining=float(remaining) if remaining is not None else None,
                mode=self.mode)
        rid = answer.get("reservation_id")
        return rid if isinstance(rid, str) else None

    def _headers(self) -> dict[str, str]:
        config = _state.get_config()
        if not config.api_key:
            raise _Unreachable()
        return {"Authorization": "Bearer " + config.api_key, "User-Agent": "tokentra-python/0.1.0"}

    def _post_sync(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = self._headers()
        try:
            response = _http(self.timeout).post(_state.get_config().url + path, json=body, headers=headers)
        except httpx.HTTPError:
            raise _Unreachable() from None
        return _answer(response)

    async def _post_async(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # The pooled sync client on a thread: nothing bound to the caller's event loop is left behind
        # when that loop closes, and the loop is never blocked.
        return await asyncio.to_thread(self._post_sync, path, body)


# One pooled client for every wrapped client's budget calls, closed at exit and not shared across fork.
_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http(timeout: float) -> httpx.Client:
    global _client
    client = _client
    if client is None:
        with _client_lock:
            if _client is None:
                _client = httpx.Client(timeout=timeout)
            client = _client
    return client


def _close_http() -> None:
    global _client
    client, _client = _client, None
    if client is not None:
        client.close()


def _forget_http_after_fork() -> None:
    global _client, _client_lock
    _client, _client_lock = None, threading.Lock()


atexit.register(_close_http)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_http_after_fork)


def _answer(response: httpx.Response) -> dict[str, Any]:
    # Anything but a 200 with a JSON object is "TokenTRA could not answer": the fail mode decides.
    if response.status_code != 200:
        raise _Unreachable()
    try:
        body = response.json()
    except ValueError:
        raise _Unreachable() from None
    if not isinstance(body, dict):
        raise _Unreachable()
    return body


def _estimate_tokens(endpoint: str, messages: Any, system: Any) -> int:
    """Input tokens of a prompt not yet tokenized: about four characters a token, plus overhead."""
    from ._prompt import extract_texts

    try:
        texts = extract_texts(endpoint, messages, system)
        return (len(texts.conversation) + len(texts.system)) // 4 + 16
    except Exception:
        return 0
