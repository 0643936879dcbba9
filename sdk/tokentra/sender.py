"""The background sender: a bounded queue drained by one daemon thread that batches and retries."""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable

from ._sanitize import encode_event
from ._transport import Outcome, Transport, pack, public_url
from .config import DEFAULT_URL, Config

__all__ = ["Sender"]

_log = logging.getLogger("tokentra")
_MAX_RETRY_AFTER = 120.0
# "enqueued" is not counted at submit (that would take a lock on the caller's thread): stats() derives it.
_COUNTERS = (
    "sent", "accepted", "duplicates", "rejected", "dropped_queue_full", "dropped_failed",
    "dropped_unauthorized", "retries", "requests", "internal_errors",
)


class Sender:
    """Queues events without blocking and delivers them to the ingest endpoint from a worker thread.

    `submit` only appends to a deque: no lock, no allocation of its own, and no thread woken (except
    once a batch is full), so a call after an idle gap costs what any call costs. Everything else
    (finishing events, JSON, HTTP, retries) runs on the worker, which starts on first use and wakes by
    itself every `flush_interval` to take what has gathered.
    """

    def __init__(
        self,
        config: Config,
        *,
        transport: Any | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        # deque.append and len are single C calls, atomic under the GIL and never blocking; the bound
        # is checked by hand and may be overshot by a few items when many threads submit at once.
        # Only the worker takes items off it, under _cond, counting them in _taken: events enqueued so
        # far are then _taken + len(_queue), with no counter touched on the caller's thread.
        self._queue: collections.deque[Any] = collections.deque()
        self._taken = 0
        self._max_queue_size = config.max_queue_size
        self._batch_size = config.batch_size
        self._has_key = bool(config.api_key)
        self._transport = transport if transport is not None else Transport(config)
        self._sleep = sleep if sleep is not None else self._abortable_sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - retry jitter, not a secret
        self._cond = threading.Condition()
        self._counts: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        self._settled = 0
        # Events given up on (dropped or refused) in all, and as of the previous flush(): flush()
        # answers False when any were lost in between.
        self._lost = 0
        self._lost_at_flush = 0
        self._warned: set = set()
        self._wakeup = threading.Event()  # ends the worker's wait early: a full batch, flush or close
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        # The plain wrapper appends to `hot_queue` itself while it holds fewer than `hot_limit` events,
        # which is exactly when submit() would only append: that spares the caller's thread two Python
        # frames. The limit stays 0 (every event goes through submit) until the worker runs, and again
        # once the sender closes.
        self.hot_queue = self._queue
        self.hot_limit = 0

    # -- caller side -------------------------------------------------------------------------------

    def submit(self, item: Any) -> bool:
        """Queue one event (a dict, or an object with `to_event()`); False if it was dropped."""
        if not self._has_key:
            # Nothing could be accepted without a key: send nothing, start no thread, say so once.
            self._warn_once("no-key", "tokentra: no API key (TOKENTRA_API_KEY is unset and configure(api_key=...) "
                                      "was not called), so usage events are not sent; set the key to record them")
            self._refuse("dropped_unauthorized")
            return False
        if self._thread is None:
            self._start()
        if self._closed:
            self._refuse("dropped_failed")
            return False
        queue = self._queue
        size = len(queue)
        if size >= self._max_queue_size:
            self._refuse("dropped_queue_full")
            self._warn_once("full", "tokentra: event queue full, dropping events (see tokentra.stats())")
            return False
        queue.append(item)
        # Waking the worker costs the caller a system call and often a context switch; only a full
        # batch is worth it, otherwise the worker's own timer collects the events.
        if size + 1 >= self._batch_size and not self._wakeup.is_set():
            self._wakeup.set()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued so far is delivered or given up on.

        True only if none is left pending and no event was dropped or refused since the previous
        flush(); `stats()` says which counter took the lost ones.
        """
        with self._cond:
            target = self._taken + len(self._queue)
            done = self._settled >= target
        if not done:
            self._wakeup.set()
            with self._cond:
                done = self._cond.wait_for(lambda: self._settled >= target, timeout)
        with self._cond:
            lost, self._lost_at_flush = self._lost - self._lost_at_flush, self._lost
        return done and lost == 0

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the worker; events still pending after `timeout` are dropped and counted."""
        timeout = self.config.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        done = self.flush(timeout)
        self.hot_limit = 0
        self._closed = True
        self._stopping.set()
        if not done:
            self._abort.set()
        self._wakeup.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        return done

    def stats(self) -> dict[str, int]:
        with self._cond:
            snapshot = dict(self._counts)
            queued = len(self._queue)
            snapshot["enqueued"] = self._taken + queued
        snapshot["queued"] = queued
        return snapshot

    def count(self, name: str, n: int = 1) -> None:
        """Add to a counter; also used by the wrapper for its own swallowed errors."""
        self._count(name, n)

    # -- worker side -------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(target=self._run, name="tokentra-sender", daemon=True)
            thread.start()
            self._thread = thread
            if self._has_key:
                self.hot_limit = min(self._max_queue_size, self._batch_size - 1)

    def _run(self) -> None:
        try:
            while True:
                # Sleeping through the window, rather than blocking on the queue, means a call never
                # wakes this thread (and a burst of calls never hands the GIL back and forth with it);
                # a full batch, flush() or close() ends the wait early.
                self._wakeup.wait(self.config.flush_interval)
                self._wakeup.clear()  # cleared before draining: a flush asked for meanwhile is seen next round
                stopping = self._stopping.is_set()
                self._drain()
                if stopping:
                    break
        except Exception:  # pragma: no cover - a bug here must not kill the process's exit path
            _log.exception("tokentra: sender stopped after an internal error")
        finally:
            self._drop_remaining()
            self._transport.close()

    def _drain(self) -> None:
        while True:
            items = self._take(self.config.batch_size)
            if not items:
                return
            self._deliver(items)

    def _take(self, limit: int) -> list[Any]:
        queue = self._queue
        with self._cond:
            items = [queue.popleft() for _ in range(min(limit, len(queue)))]
            self._taken += len(items)
        return items

    def _deliver(self, items: Sequence[Any]) -> None:
        # Usage events go to /ingest; items that name another target (feedback) go there.
        by_target: dict[str, list[bytes]] = {}
        for item in items:
            try:
                event = item.to_event() if hasattr(item, "to_event") else item
                part = encode_event(event)
                by_target.setdefault(getattr(item, "target", "ingest"), []).append(part)
            except Exception:
                _log.debug("tokentra: could not build an event", exc_info=True)
                self._give_up("internal_errors", 1)
            # Hand the GIL back between events: a caller thread then waits for at most one event's
            # work, instead of the interpreter's 5 ms switch interval.
            time.sleep(0)
        for target, parts in by_target.items():
            for group in pack(parts, target=target):
                self._send(group, target)

    def _send(self, group: list[bytes], target: str = "ingest") -> None:
        attempt = 0
        while True:
            if self._abort.is_set():
                self._give_up("dropped_failed", len(group))
                return
            outcome = self._post(group, target)
            if outcome.kind == Outcome.OK:
                self._record_ok(outcome, len(group))
                return
            # 413 asks for smaller requests; a 400 or 422 of a whole request may be one event's fault:
            # halving until it stands alone delivers every other event of the group.
            if len(group) > 1 and (outcome.kind == Outcome.SPLIT
                                   or (outcome.kind == Outcome.REJECTED and outcome.status in (400, 422))):
                middle = len(group) // 2
                self._send(group[:middle], target)
                self._send(group[middle:], target)
                return
            if outcome.kind in (Outcome.SPLIT, Outcome.REJECTED):
                self._warn_once(f"status-{outcome.status}", self._refusal(outcome, target))
                self._give_up("rejected", len(group))
                return
            if outcome.kind == Outcome.UNAUTHORIZED:
                self._warn_once("auth", f"tokentra: {self._endpoint(target)} refused the API key (HTTP 401); "
                                        "events are dropped: check TOKENTRA_API_KEY")
                self._give_up("dropped_unauthorized", len(group))
                return
            if attempt >= self.config.max_retries or self._abort.is_set():
                why = outcome.error or f"HTTP {outcome.status}"
                self._warn_once("failed", f"tokentra: {self._endpoint(target)} unreachable after "
                                          f"{attempt + 1} attempt(s) ({why}); events are dropped: check "
                                          "TOKENTRA_URL and that the TokenTRA functions are running")
                self._give_up("dropped_failed", len(group))
                return
            delay = self._retry_delay(outcome, attempt)
            attempt += 1
            self._count("retries")
            _log.debug("tokentra: ingest attempt failed (status %s), retry in %.2fs", outcome.status, delay)
            self._sleep(delay)

    def _endpoint(self, target: str) -> str:
        endpoint = getattr(self._transport, "endpoint", None)
        return endpoint(target) if callable(endpoint) else public_url(f"{self.config.url}/{target}")

    def _refusal(self, outcome: Outcome, target: str) -> str:
        where = self._endpoint(target)
        if outcome.status in (404, 405):
            # Almost always a TOKENTRA_URL that is not the functions base URL.
            return (f"tokentra: {where} answered HTTP {outcome.status}: no TokenTRA {target} endpoint there; "
                    f"TOKENTRA_URL must be the functions base URL, e.g. {DEFAULT_URL} "
                    f"(events go to TOKENTRA_URL/{target}); events are dropped")
        return f"tokentra: {where} refused events (HTTP {outcome.status}); they are dropped"

    def _post(self, group: list[bytes], target: str) -> Outcome:
        self._count("requests")
        try:
            # Test transports may only know ingest; the default target keeps their signature working.
            return self._transport.post(group) if target == "ingest" else self._transport.post(group, target)
        except Exception:
            _log.debug("tokentra: unexpected error while posting", exc_info=True)
            return Outcome(Outcome.RETRY)

    def _retry_delay(self, outcome: Outcome, attempt: int) -> float:
        if outcome.retry_after is not None:
            return min(outcome.retry_after, _MAX_RETRY_AFTER)
        ceiling = min(self.config.max_backoff, self.config.backoff_base * (2 ** attempt))
        # "Equal jitter": never less than half the step, so retries still spread out but keep backing off.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _record_ok(self, outcome: Outcome, n: int) -> None:
        if outcome.rejected:
            self._warn_once("rejected", "tokentra: ingest rejected some events (details at debug level)")
            for entry in outcome.rejected[:20]:
                if isinstance(entry, dict):
                    _log.debug("tokentra: rejected index=%s field=%s: %s",
                               entry.get("index"), entry.get("field"), entry.get("message"))
        with self._cond:
            self._counts["sent"] += n
            self._counts["accepted"] += outcome.accepted
            self._counts["duplicates"] += outcome.duplicates
            self._counts["rejected"] += len(outcome.rejected)
            self._lost += len(outcome.rejected)
            self._settled += n
            self._cond.notify_all()

    def _give_up(self, counter: str, n: int) -> None:
        with self._cond:
            self._counts[counter] += n
            self._lost += n
            self._settled += n
            self._cond.notify_all()

    def _drop_remaining(self) -> None:
        dropped = len(self._take(len(self._queue)))
        if dropped:
            self._give_up("dropped_failed", dropped)

    def _refuse(self, counter: str) -> None:
        """An event turned away at submit: never queued, so never settled, but lost all the same."""
        with self._cond:
            self._counts[counter] += 1
            self._lost += 1

    def _count(self, name: str, n: int = 1) -> None:
        with self._cond:
            self._counts[name] += n

    def _abortable_sleep(self, delay: float) -> None:
        self._abort.wait(delay)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message)
