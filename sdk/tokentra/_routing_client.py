"""Routing in the SDK: `tokentra.wrap(client, routing=True, strategy=..., quality_floor=...)`.

Decisions are made in the caller's process by `tokentra.routing` from a snapshot of the organization's
rules and the model registry, which one background thread per process fetches from
`{TOKENTRA_URL}/route/snapshot` and refreshes every `refresh_seconds` (an unchanged snapshot costs a
304). A call therefore makes no extra round trip. Until a snapshot has arrived, or when TokenTRA cannot be
reached, calls go to the model asked for (fail open). The model is rewritten only to one of the same
provider (the wrapped client speaks one provider's API); a routed call that raises is made again on the
model asked for, and both attempts are recorded.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from . import _state
from ._prompt import extract_texts
from .classifier import classify
from .routing import STRATEGIES, Decision, RouteRequest, Snapshot, decide

__all__ = ["CallBlocked", "Router", "SnapshotSource", "refresh_routing", "source"]

_log = logging.getLogger("tokentra")
_MAX_TOKEN_PARAMS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_TAGS = ("feature", "team", "project", "user_id")
_IMAGE_PARTS = ("image_url", "image", "input_image")
_JSON_FORMATS = ("json_object", "json_schema")


class CallBlocked(Exception):
    """A routing rule of the organization blocks this call; the provider was not called."""

    def __init__(self, message: str, rule_id: str | None = None) -> None:
        super().__init__(message)
        self.rule_id = rule_id


class SnapshotSource:
    """The process's copy of the routing snapshot, refreshed by one daemon thread."""

    def __init__(self, refresh_seconds: float = 60.0, timeout: float = 5.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout
        self.snapshot: Snapshot | None = None
        self.fetched_at: float | None = None
        self.failures = 0
        self._etag: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def current(self) -> Snapshot | None:
        """The snapshot in hand (None before the first one), starting the refresher on first use."""
        if self._thread is None:
            self._start()
        return self.snapshot

    def refresh(self) -> bool:
        """Fetch now; True when a snapshot is in hand afterwards. Never raises."""
        config = _state.get_config()
        if not config.api_key or not config.enabled:
            return self.snapshot is not None
        headers = {"Authorization": "Bearer " + config.api_key, "User-Agent": "tokentra-python/0.1.0"}
        if self._etag and self.snapshot is not None:
            headers["If-None-Match"] = self._etag
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = client.get(config.url + "/route/snapshot", headers=headers)
            if response.status_code == 304:
                self.fetched_at = time.time()
            elif response.status_code == 200:
                snapshot = Snapshot.from_dict(response.json())
                with self._lock:
                    self.snapshot, self._etag = snapshot, response.headers.get("etag")
                    self.fetched_at = time.time()
                for problem in snapshot.errors:
                    _log.warning("tokentra: routing rule skipped: %s", problem)
            else:
                self.failures += 1
                _log.debug("tokentra: routing snapshot answered %s", response.status_code)
        except (httpx.HTTPError, ValueError, TypeError, KeyError):
            self.failures += 1
            _log.debug("tokentra: routing snapshot unavailable", exc_info=True)
        return self.snapshot is not None

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="tokentra-routing", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.refresh_seconds)

    def stop(self) -> None:
        self._stop.set()


_source: SnapshotSource | None = None
_source_lock = threading.Lock()


def source(refresh_seconds: float | None = None) -> SnapshotSource:
    """The process-wide snapshot source (one refresher whatever the number of wrapped clients)."""
    global _source
    current = _source
    if current is None:
        with _source_lock:
            if _source is None:
                _source = SnapshotSource(refresh_seconds or 60.0)
            current = _source
    if refresh_seconds is not None:
        current.refresh_seconds = min(current.refresh_seconds, refresh_seconds)
    return current


def refresh_routing(timeout: float = 5.0) -> bool:
    """Fetch the routing snapshot now (normally done in the background); True when one is in hand."""
    src = source()
    src.timeout = timeout
    return src.refresh()


def _reset_after_fork() -> None:
    global _source, _source_lock
    _source, _source_lock = None, threading.Lock()


def _stop_at_exit() -> None:
    if _source is not None:
        _source.stop()


atexit.register(_stop_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class Router:
    """How one wrapped client routes: its strategy and quality floor, over the process's snapshot."""

    __slots__ = ("strategy", "quality_floor", "refresh_seconds")

    def __init__(self, strategy: str | None = None, quality_floor: float | None = None,
                 refresh_seconds: float = 60.0) -> None:
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
        if quality_floor is not None and not 0 <= quality_floor <= 1:
            raise ValueError("quality_floor must be between 0 and 1")
        self.strategy = strategy
        self.quality_floor = quality_floor
        self.refresh_seconds = refresh_seconds

    def apply(self, call: Any, kwargs: dict[str, Any]) -> Decision | None:
        """Decide and rewrite kwargs["model"] when allowed; None when nothing routed. Raises CallBlocked
        for a block rule; any other failure leaves the call as it was (fail open)."""
        snapshot = source(self.refresh_seconds).current()
        if snapshot is None or not isinstance(call.model, str) or not call.model:
            return None
        try:
            decision = decide(self._request(call, kwargs), snapshot)
        except Exception:
            _log.debug("tokentra: routing decision failed; the call goes ahead unrouted", exc_info=True)
            return None
        if decision.blocked:
            raise CallBlocked(decision.reason, decision.rule_id)
        if decision.arm is None:
            return None
        routed = decision.routed and decision.provider == call.provider
        call.routing = {
            "routing_rule_id": decision.rule_id,
            "routing_arm": decision.arm,
            "routed_from_model": call.model if routed else None,
            "routed_from_provider": call.provider if routed else None,
        }
        if routed:
            kwargs["model"] = decision.model
            call.model = decision.model
        return decision

    def _request(self, call: Any, kwargs: Mapping[str, Any]) -> RouteRequest:
        texts = extract_texts(call.endpoint, call.messages, call.system)
        tags = call.tags
        output = None
        for name in _MAX_TOKEN_PARAMS:
            value = kwargs.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                output = value
                break
        return RouteRequest(
            model=call.model, provider=call.provider,
            task_type=classify(texts.last_user or texts.conversation, texts.system),
            input_tokens=(len(texts.conversation) + len(texts.system)) // 4 + 16, output_tokens=output,
            feature=_tag(tags, "feature"), team=_tag(tags, "team"), project=_tag(tags, "project"),
            user_id=_tag(tags, "user_id"),
            tags={str(k): v for k, v in tags.items() if k not in _TAGS and isinstance(v, (str, int, float, bool))},
            strategy=self.strategy, quality_floor=self.quality_floor,
            needs_tools=bool(kwargs.get("tools") or kwargs.get("functions")),
            needs_vision=_has_images(call.messages), needs_json=_wants_json(kwargs),
            providers=(call.provider,),
        )


def fallback_kwargs(kwargs: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    """The same request on the model asked for, marked so it is not routed again."""
    again = dict(kwargs)
    again["model"] = decision.original_model
    again["tokentra_routing"] = _Fallback(decision)
    return again


class _Fallback:
    """Marks a call made again on the asked model after the routed one failed."""

    __slots__ = ("decision",)

    def __init__(self, decision: Decision) -> None:
        self.decision = decision


def take_option(kwargs: dict[str, Any]) -> Any:
    """Remove the per-call `tokentra_routing` argument (False turns routing off for the call)."""
    return kwargs.pop("tokentra_routing", None)


def mark_fallback(call: Any, option: Any) -> bool:
    """Record a fallback call under its decision's rule and arm; True when `option` was one."""
    if isinstance(option, _Fallback):
        call.routing = {"routing_rule_id": option.decision.rule_id, "routing_arm": option.decision.arm,
                        "routed_from_model": None, "routed_from_provider": None}
        return True
    return False


def _tag(tags: Mapping[str, Any], name: str) -> str | None:
    value = tags.get(name)
    return None if value is None else str(value)


def _has_images(messages: Any) -> bool:
    if not isinstance(messages, (list, tuple)):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else getattr(message, "content", None)
        if isinstance(content, (list, tuple)):
            for part in content:
                kind = part.get("type") if isinstance(part, Mapping) else getattr(part, "type", None)
                if kind in _IMAGE_PARTS:
                    return True
    return False


def _wants_json(kwargs: Mapping[str, Any]) -> bool:
    fmt = kwargs.get("response_format")
    if isinstance(fmt, Mapping):
        return fmt.get("type") in _JSON_FORMATS
    return isinstance(fmt, type)  # parse(response_format=SomeModel)
