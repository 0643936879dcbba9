"""How much time the SDK adds to each wrapped call, for `tokentra bench sdk`.

A stand-in provider client answers instantly and clocks its own work; the wrapped call is clocked
around the outside. Their difference is what the caller's thread spent in TokenTRA code: proxy
lookups, tag merging, the request id, the queue put, stream bookkeeping. The real sender thread runs
meanwhile (posting to nowhere). Calls go in bursts of `burst`, and the sender catches up between
bursts, untimed, as it would between real LLM calls that take far longer than its work; the CPU it
spends per event (hashing, classifying, JSON) is reported separately as `worker_us_per_event`.
A backlog larger than that would make callers also wait for the GIL, up to one event's worker time.
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Iterator
from time import perf_counter_ns
from types import SimpleNamespace
from typing import Any

from tokentra import _state
from tokentra._transport import Outcome
from tokentra.config import Config
from tokentra.sender import Sender
from tokentra.wrap import ClientProxy

__all__ = ["measure_overhead"]

_USAGE = SimpleNamespace(prompt_tokens=1200, completion_tokens=300, total_tokens=1500,
                         prompt_tokens_details=None, completion_tokens_details=None)


def measure_overhead(n: int = 5000, *, stream: bool = False, prompt_chars: int = 2000, chunks: int = 20,
                     warmup: int = 500, burst: int = 50) -> dict[str, Any]:
    """Per-call SDK overhead on the caller's thread, in microseconds: p50, p99, mean, max.

    `stream=True` measures a streamed call read to the end (`chunks` chunks plus the usage chunk).
    """
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
    with _using(sender):
        for _ in range(warmup):
            _one_call(client, provider, messages, stream)
        samples: list[int] = []
        while len(samples) < n:
            sender.flush(timeout=60)
            samples.extend(_one_call(client, provider, messages, stream)
                           for _ in range(min(burst, n - len(samples))))
        sender.flush(timeout=60)
    sender.close(timeout=5)
    samples.sort()
    return {
        "n": n,
        "stream": stream,
        "chunks": chunks + 1 if stream else 0,
        "p50_us": _us(samples[len(samples) // 2]),
        "p99_us": _us(samples[min(len(samples) - 1, (len(samples) * 99) // 100)]),
        "mean_us": _us(statistics.fmean(samples)),
        "max_us": _us(samples[-1]),
        "worker_us_per_event": _worker_cost(messages, stream),
    }


def _one_call(client: Any, provider: _Provider, messages: list[dict[str, str]], stream: bool) -> int:
    provider.inside_ns = 0
    start = perf_counter_ns()
    result = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=stream,
                                            tokentra_tags={"feature": "bench"})
    if stream:
        for _ in result:
            pass
    return perf_counter_ns() - start - provider.inside_ns


def _worker_cost(messages: list[dict[str, str]], stream: bool) -> float:
    """Median sender-thread CPU to turn one call into JSON, measured on this thread."""
    from tokentra._observe import ENDPOINTS, begin

    costs = []
    for _ in range(200):
        call = begin("openai", ENDPOINTS["chat.completions"], {"model": "gpt-4o-mini", "messages": messages,
                                                               "stream": stream})
        assert call is not None
        call.usage = _USAGE
        start = perf_counter_ns()
        json.dumps(call.to_event(), separators=(",", ":"))
        costs.append(perf_counter_ns() - start)
    return _us(statistics.median(costs))


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
