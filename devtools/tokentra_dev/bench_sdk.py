"""How much time the SDK adds to each wrapped call, for `tokentra bench sdk`.

One stand-in provider client answers instantly and clocks its own work. Each round calls it twice with
the same arguments, once through the raw client and once through `tokentra.wrap`'s proxy of that same
client, and clocks both from the outside; a call's own time minus the provider's clocked work is what the
caller's thread spent around it: for the raw call next to nothing (the baseline), for the wrapped call the
SDK's hot path (proxy lookups, tag merge, the call record, one queue append, stream bookkeeping).
Percentiles are over every timed call, including those made right after an idle gap (the process sleeps
20-60 ms before some rounds, so the sender has gone quiet and whatever a first call wakes or loads counts).
A round's first call is a wrapped one, so it also pays for the bench's own code being out of the CPU's
caches; before each such round an unwrapped call is timed alone after a gap of its own
(`after_idle_gap_unwrapped`, kept out of the percentiles), which says how much of a post-gap call is
the machine's and the bench's rather than the SDK's.

The real sender thread runs meanwhile (posting to nowhere). The sender catches up between rounds,
untimed, as it would during real LLM calls, which take far longer than its work; the CPU it spends per
event (hashing, classifying, JSON) is reported as `worker_us_per_event`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from time import perf_counter_ns
from types import SimpleNamespace
from typing import Any, cast

from tokentra import _state
from tokentra._transport import Outcome
from tokentra.config import Config
from tokentra.sender import Sender
from tokentra.wrap import ClientProxy

__all__ = ["measure_overhead"]

_TAGS = {"tokentra_tags": {"feature": "bench"}}
_USAGE = SimpleNamespace(prompt_tokens=1200, completion_tokens=300, total_tokens=1500,
                         prompt_tokens_details=None, completion_tokens_details=None)


def measure_overhead(n: int = 5000, *, stream: bool = False, prompt_chars: int = 2000, chunks: int = 20,
                     warmup: int = 500, burst: int = 50, idle_every: int = 4,
                     idle_ms: tuple[float, float] = (20.0, 60.0), seed: int | None = None) -> dict[str, Any]:
    """Per-call SDK time on the caller's thread, in microseconds, beside the unwrapped call's.

    Calls go in rounds of `burst` (wrapped and unwrapped alternating, which goes first alternating too);
    before every `idle_every`-th round the process sleeps a random gap in `idle_ms`, and that round's
    first wrapped call is also reported on its own (`after_idle_gap`), beside an unwrapped call timed
    alone after another gap just before (`after_idle_gap_unwrapped`), and the first wrapped call of the
    other rounds, made right after the sender's catching up (`after_flush`). `stream=True` times a
    streamed call read to the end (`chunks` chunks plus the usage chunk).
    """
    rng = random.Random(seed)
    provider = _Provider(stream_chunks=chunks)
    raw = SimpleNamespace(chat=SimpleNamespace(completions=provider))
    client = ClientProxy(raw, "openai", False)
    user_text = ("Summarize the following text. " * (prompt_chars // 30 + 1))[:prompt_chars]
    messages = [
        {"role": "system", "content": "You are a helpful assistant. " * 4},
        {"role": "user", "content": user_text},
    ]
    sender = Sender(Config(api_key="bench", max_queue_size=n + warmup + 10, batch_size=1000),
                    transport=_NullTransport())
    wrapped: list[int] = []
    unwrapped: list[int] = []
    after_gap: list[int] = []
    after_gap_unwrapped: list[int] = []
    after_flush: list[int] = []
    with _using(sender):
        for i in range(warmup):
            _one_call(client, provider, messages, stream, _TAGS)
            _one_call(raw, provider, messages, stream)
            if i % burst == 0:
                sender.flush(timeout=60)
        rounds = 0
        while len(wrapped) < n:
            sender.flush(timeout=60)
            rounds += 1
            gap = idle_every > 0 and rounds % idle_every == 0
            if gap:
                time.sleep(rng.uniform(*idle_ms) / 1000)
                after_gap_unwrapped.append(_one_call(raw, provider, messages, stream))
                time.sleep(rng.uniform(*idle_ms) / 1000)
            for j in range(min(burst, n - len(wrapped))):
                if j % 2 == 0:
                    wrapped.append(_one_call(client, provider, messages, stream, _TAGS))
                    unwrapped.append(_one_call(raw, provider, messages, stream))
                else:
                    unwrapped.append(_one_call(raw, provider, messages, stream))
                    wrapped.append(_one_call(client, provider, messages, stream, _TAGS))
                if j == 0:
                    (after_gap if gap else after_flush).append(wrapped[-1])
        sender.flush(timeout=60)
    sender.close(timeout=5)
    sdk = _summary(wrapped)
    base = _summary(unwrapped)
    return {
        "n": n,
        "stream": stream,
        "chunks": chunks + 1 if stream else 0,
        "load_average_1m": round(os.getloadavg()[0], 2),  # the machine is shared: read figures against it
        **sdk,
        "unwrapped_us": base,
        "added_p99_us": round(sdk["p99_us"] - base["p99_us"], 2),
        "after_idle_gap": {"n": len(after_gap), **_summary(after_gap)},
        "after_idle_gap_unwrapped": {"n": len(after_gap_unwrapped), **_summary(after_gap_unwrapped)},
        "after_flush": {"n": len(after_flush), **_summary(after_flush)},
        "p99_vs_50us_target": round(sdk["p99_us"] / 50, 3),
        "worker_us_per_event": _worker_cost(messages, stream),
    }


def _summary(samples: list[int]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {
        "p50_us": _us(ordered[len(ordered) // 2]),
        "p99_us": _us(ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)]),
        "mean_us": _us(statistics.fmean(ordered)),
        "max_us": _us(ordered[-1]),
    }


def _one_call(client: Any, provider: _Provider, messages: list[dict[str, str]], stream: bool,
              extra: dict[str, Any] | None = None) -> int:
    """One call's time outside the provider's own code, in nanoseconds; `extra` are its extra arguments."""
    extra = extra or {}
    provider.inside_ns = 0
    start = perf_counter_ns()
    result = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=stream, **extra)
    if stream:
        for _ in result:
            pass
    return perf_counter_ns() - start - provider.inside_ns


def _worker_cost(messages: list[dict[str, str]], stream: bool) -> float:
    """Median sender-thread CPU to turn one call into JSON, measured on this thread, for records made by
    the same wrapper the bench times (kept by a stand-in for the sender instead of being sent)."""
    provider = _Provider(stream_chunks=20)
    client = ClientProxy(SimpleNamespace(chat=SimpleNamespace(completions=provider)), "openai", False)
    collector = _Collector()
    with _using(cast(Sender, collector)):
        for _ in range(200):
            _one_call(client, provider, messages, stream, _TAGS)
    costs = []
    for call in collector.hot_queue:
        start = perf_counter_ns()
        json.dumps(call.to_event(), separators=(",", ":"))
        costs.append(perf_counter_ns() - start)
    return _us(statistics.median(costs))


class _Collector:
    """Keeps what the wrapper queues: a non-streamed call is appended to `hot_queue` directly, a
    streamed one is handed to `submit` when its stream ends."""

    def __init__(self) -> None:
        self.config = Config(api_key="bench")
        self.hot_queue: collections.deque[Any] = collections.deque()
        self.hot_limit = 1 << 30

    def submit(self, item: Any) -> bool:
        self.hot_queue.append(item)
        return True


@contextlib.contextmanager
def _using(sender: Sender) -> Iterator[None]:
    # The bench must not send to, or count against, the application's own sender.
    with _state._lock:
        saved = _state._config, _state._sender
        _state._config, _state._sender = sender.config, sender
    try:
        yield
    finally:
        with _state._lock:
            _state._config, _state._sender = saved


class _Provider:
    """Answers at once, adding the time spent in its own code to `inside_ns`."""

    def __init__(self, stream_chunks: int) -> None:
        self.inside_ns = 0
        delta = SimpleNamespace(content="word ")
        chunk = SimpleNamespace(model="gpt-4o-mini-2024-07-18", service_tier="default", usage=None,
                                choices=[SimpleNamespace(index=0, delta=delta, finish_reason=None)])
        last = SimpleNamespace(model=chunk.model, service_tier="default", usage=_USAGE, choices=[])
        self._chunks = [chunk] * stream_chunks + [last]
        choice = SimpleNamespace(index=0, message=delta, finish_reason="stop")
        self._response = SimpleNamespace(model=chunk.model, service_tier="default", usage=_USAGE,
                                         choices=[choice])

    def create(self, **kwargs: Any) -> Any:
        start = perf_counter_ns()
        result = _Stream(self, self._chunks) if kwargs.get("stream") else self._response
        self.inside_ns += perf_counter_ns() - start
        return result


class _Stream:
    def __init__(self, provider: _Provider, chunks: list[Any]) -> None:
        self._provider = provider
        self._chunks = iter(chunks)
        self.response = None

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> Any:
        start = perf_counter_ns()
        try:
            return next(self._chunks)
        finally:
            self._provider.inside_ns += perf_counter_ns() - start

    def close(self) -> None:
        pass


class _NullTransport:
    def post(self, parts: Any) -> Outcome:
        outcome = Outcome(Outcome.OK, 200)
        outcome.accepted = len(parts)
        return outcome

    def close(self) -> None:
        pass


def _us(ns: float) -> float:
    return round(ns / 1000, 2)
