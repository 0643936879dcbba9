"""TokenTRA's semantic cache from the SDK: `tokentra.wrap(client, cache=True)`.

Before a non-streamed create/parse call the SDK asks `{TOKENTRA_URL}/cache/lookup`; on a hit the stored
answer comes back as the provider's own response type and the provider is not called (the call is
recorded with `cache_hit` and what it saved). After a miss the answer is sent to `/cache/store` on a
background thread. Anything going wrong with TokenTRA (unreachable, slow, an error) means a normal call:
the cache fails open, always.

With the cache on, the prompt text of cached calls is sent to TokenTRA, which embeds it and drops it
(it keeps it only where the organization opted in to storing prompts); answers are kept only where the
organization opted in to storing responses. Streams, and requests with images, files or tool calls,
are never cached.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from . import _state

__all__ = ["CacheClient"]

_log = logging.getLogger("tokentra")
# Arguments the provider gets but the cache key does not need to see as parameters.
_PROMPT_PARAMS = {"chat.completions": ("messages", None), "responses": ("input", "instructions"),
                  "messages": ("messages", "system")}
_RESPONSE_TYPES = {
    "chat.completions": ("openai.types.chat", "ChatCompletion"),
    "responses": ("openai.types.responses", "Response"),
    "messages": ("anthropic.types", "Message"),
}


def _plain(value: Any) -> Any:
    """JSON-ready copies of request values (pydantic models and TypedDicts alike)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, type):  # parse(response_format=SomeModel): its schema decides the answer
        schema = getattr(value, "model_json_schema", None)
        return schema() if callable(schema) else value.__name__
    return value


class CacheClient:
    """Lookups on the caller's thread (bounded by `timeout`), stores on a background thread."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._stores: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ request
    def _body(self, provider: str, endpoint: str, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        prompt, system = _PROMPT_PARAMS[endpoint]
        if kwargs.get("stream") or not isinstance(kwargs.get("model"), str):
            return None
        params = {k: _plain(v) for k, v in kwargs.items() if k not in (prompt, system, "model")}
        body: dict[str, Any] = {"provider": provider, "model": kwargs["model"],
                                "messages": _plain(kwargs.get(prompt)), "params": params}
        if system is not None and kwargs.get(system) is not None:
            body["system"] = _plain(kwargs[system])
        return body

    def _headers(self) -> dict[str, str] | None:
        config = _state.get_config()
        if not config.api_key:
            return None
        return {"Authorization": f"Bearer {config.api_key}"}

    # ------------------------------------------------------------ lookup
    def lookup(self, call: Any, kwargs: Mapping[str, Any]) -> Any:
        """The cached answer as the provider's response object, or None (miss, off, or any failure)."""
        try:
            body = self._body(call.provider, call.endpoint, kwargs)
            headers = self._headers()
            if body is None or headers is None:
                return None
            answer = httpx.post(f"{_state.get_config().url}/cache/lookup", json=body, headers=headers,
                                timeout=self.timeout)
            return self._hit(call, answer)
        except Exception:  # fail open: the provider answers
            _log.debug("tokentra: cache lookup failed; calling the provider", exc_info=True)
            return None

    async def lookup_async(self, call: Any, kwargs: Mapping[str, Any]) -> Any:
        try:
            body = self._body(call.provider, call.endpoint, kwargs)
            headers = self._headers()
            if body is None or headers is None:
                return None
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.post(f"{_state.get_config().url}/cache/lookup", json=body, headers=headers)
            return self._hit(call, answer)
        except Exception:
            _log.debug("tokentra: cache lookup failed; calling the provider", exc_info=True)
            return None

    def _hit(self, call: Any, answer: httpx.Response) -> Any:
        if answer.status_code != 200:
            return None
        found = answer.json()
        if not found.get("hit") or not isinstance(found.get("response"), dict):
            return None
        module, name = _RESPONSE_TYPES[call.endpoint]
        response_type = getattr(__import__(module, fromlist=[name]), name)
        response = response_type.model_validate(found["response"])
        call.cache = {"cache_entry_id": found.get("entry_id"), "cache_saved_usd": float(found.get("saved_usd") or 0)}
        return response

    # ------------------------------------------------------------ store
    def store_later(self, call: Any, kwargs: Mapping[str, Any], result: Any) -> None:
        """Queue the answer of a missed call for /cache/store; never blocks, drops when the queue is full."""
        try:
            body = self._body(call.provider, call.endpoint, kwargs)
            dump = getattr(result, "model_dump", None)
            if body is None or not callable(dump) or call.status != "success":
                return
            usage = getattr(result, "usage", None)
            body["response"] = dump(mode="json")
            body["input_tokens"] = int(getattr(usage, "prompt_tokens", None) or getattr(usage, "input_tokens", 0) or 0)
            body["output_tokens"] = int(getattr(usage, "completion_tokens", None)
                                        or getattr(usage, "output_tokens", 0) or 0)
            self._stores.put_nowait(body)
            self._ensure_thread()
        except Exception:
            _log.debug("tokentra: cache store not queued", exc_info=True)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tokentra-cache", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=max(self.timeout, 10.0)) as client:
            while True:
                body = self._stores.get()
                try:
                    headers = self._headers()
                    if headers is not None:
                        client.post(f"{_state.get_config().url}/cache/store", json=body, headers=headers)
                except Exception:
                    _log.debug("tokentra: cache store failed", exc_info=True)
                finally:
                    self._stores.task_done()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until queued stores are sent (tests, demos); True when none is left."""
        done = threading.Event()

        def waiter() -> None:
            self._stores.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)
