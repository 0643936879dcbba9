"""The background sender against the local ingest receiver: batching, limits, retries, drops, flush."""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sdk_ingest_receiver import MAX_BYTES, MAX_EVENTS, TOKENTRA_KEY, IngestReceiver

from tokentra._transport import encode_body, pack, parse_retry_after
from tokentra.config import Config
from tokentra.sender import Sender

MakeSender = Callable[..., tuple[Sender, list[float]]]


@pytest.fixture
def make_sender(ingest_receiver: IngestReceiver) -> Iterator[MakeSender]:
    """Senders aimed at the receiver whose backoff sleeps are recorded instead of slept."""
    senders: list[Sender] = []

    def make(**options: object) -> tuple[Sender, list[float]]:
        settings = {"api_key": TOKENTRA_KEY, "url": ingest_receiver.url, "flush_interval": 60.0, **options}
        delays: list[float] = []
        sender = Sender(Config(**settings), sleep=delays.append, rng=random.Random(7))  # type: ignore[arg-type]
        senders.append(sender)
        return sender, delays

    yield make
    for sender in senders:
        sender.close(timeout=5)


def event(n: int = 0, **extra: object) -> dict:
    return {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "m", "n": n, **extra}


def ids(events: list[dict]) -> list[str]:
    return [e["request_id"] for e in events]


def test_events_leave_in_batches_of_batch_size(make_sender: MakeSender,
                                               ingest_receiver: IngestReceiver) -> None:
    sender, _ = make_sender(batch_size=10)
    sent = [event(i) for i in range(25)]
    for e in sent:
        assert sender.submit(e)
    assert sender.flush(timeout=10)
    assert [len(r.events) for r in ingest_receiver.requests] == [10, 10, 5]
    assert ids(ingest_receiver.events) == ids(sent)
    stats = sender.stats()
    assert (stats["enqueued"], stats["sent"], stats["accepted"], stats["queued"]) == (25, 25, 25, 0)


def test_requests_stay_within_the_contract_limits(make_sender: MakeSender,
                                                  ingest_receiver: IngestReceiver) -> None:
    sender, _ = make_sender(batch_size=1000, max_queue_size=5000)
    padding = "x" * 900  # ~1 KB per event: 2,500 events cannot fit in one 1 MiB body
    sent = [event(i, metadata={"pad": padding}) for i in range(2500)]
    for e in sent:
        sender.submit(e)
    assert sender.flush(timeout=20)
    assert len(ingest_receiver.requests) >= 3
    for request in ingest_receiver.requests:
        assert request.status == 200
        assert len(request.events) <= MAX_EVENTS and len(request.body) <= MAX_BYTES
    assert ids(ingest_receiver.events) == ids(sent)


def test_413_splits_the_batch(make_sender: MakeSender, ingest_receiver: IngestReceiver) -> None:
    sender, delays = make_sender(batch_size=8)
    ingest_receiver.fail_next(413)
    sent = [event(i) for i in range(8)]
    for e in sent:
        sender.submit(e)
    assert sender.flush(timeout=10)
    assert [r.status for r in ingest_receiver.requests] == [413, 200, 200]
    assert [len(r.events) for r in ingest_receiver.requests[1:]] == [4, 4]
    assert ids(ingest_receiver.events) == ids(sent) and delays == []


def test_retries_resend_the_same_request_ids_with_growing_jittered_backoff(
        make_sender: MakeSender, ingest_receiver: IngestReceiver) -> None:
    sender, delays = make_sender(batch_size=3, backoff_base=0.5)
    ingest_receiver.fail_next(500, times=2)
    ingest_receiver.fail_next(503)
    sent = [event(i) for i in range(3)]
    for e in sent:
        sender.submit(e)
    assert sender.flush(timeout=10)

    statuses = [r.status for r in ingest_receiver.requests]
    assert statuses == [500, 500, 503, 200]
    bodies = {r.body for r in ingest_receiver.requests}
    assert len(bodies) == 1  # byte-for-byte the same batch, so the same request ids every time
    assert ids(ingest_receiver.events) == ids(sent)
    # Equal jitter: attempt n waits between half and all of base * 2**n.
    assert len(delays) == 3
    for attempt, delay in enumerate(delays):
        ceiling = 0.5 * 2 ** attempt
        assert ceiling / 2 <= delay <= ceiling
    assert sender.stats()["retries"] == 3 and sender.stats()["requests"] == 4


def test_429_waits_as_long_as_retry_after_says(make_sender: MakeSender,
                                               ingest_receiver: IngestReceiver) -> None:
    sender, delays = make_sender(batch_size=1)
    ingest_receiver.fail_next(429, headers={"Retry-After": "7"})
    sender.submit(event())
    assert sender.flush(timeout=10)
    assert delays == [7.0]
    assert [r.status for r in ingest_receiver.requests] == [429, 200]


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_gives_up_after_max_retries(make_sender: MakeSender, ingest_receiver: IngestReceiver) -> None:
    sender, delays = make_sender(batch_size=2, max_retries=3)
    ingest_receiver.fail_next(500, times=10)
    sender.submit(event())
    sender.submit(event())
    assert not sender.flush(timeout=10)  # settled, but every event was dropped
    assert len(ingest_receiver.requests) == 4 and len(delays) == 3
    stats = sender.stats()
    assert (stats["dropped_failed"], stats["sent"], stats["retries"]) == (2, 0, 3)


def test_network_errors_are_retried(make_sender: MakeSender) -> None:
    with socket.socket() as sock:  # a port nothing listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender, delays = make_sender(url=f"http://127.0.0.1:{port}/functions/v1", batch_size=1, max_retries=2)
    assert sender.submit(event())
    assert not sender.flush(timeout=10)
    stats = sender.stats()
    assert (stats["requests"], stats["retries"], stats["dropped_failed"]) == (3, 2, 1)
    assert len(delays) == 2


@pytest.mark.parametrize("status", [400, 422])
def test_client_errors_are_not_retried(make_sender: MakeSender, ingest_receiver: IngestReceiver,
                                       status: int) -> None:
    # One event: a refused request of several is halved instead (test_poisoned_events.py).
    sender, delays = make_sender(batch_size=1)
    ingest_receiver.fail_next(status)
    sender.submit(event())
    assert not sender.flush(timeout=10)  # refused events are not delivered ones
    assert len(ingest_receiver.requests) == 1 and delays == []
    assert sender.stats()["rejected"] == 1


def test_401_is_dropped_and_logged_once(make_sender: MakeSender, ingest_receiver: IngestReceiver,
                                        caplog: pytest.LogCaptureFixture) -> None:
    sender, delays = make_sender(api_key="tt_wrong_SECRET", batch_size=2)
    with caplog.at_level(logging.WARNING, logger="tokentra"):
        for _ in range(5):
            sender.submit(event())
        assert not sender.flush(timeout=10)
    assert [r.status for r in ingest_receiver.requests] == [401, 401, 401] and delays == []
    assert sender.stats()["dropped_unauthorized"] == 5
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "401" in warnings[0].getMessage()
    assert "SECRET" not in caplog.text


def test_without_an_api_key_nothing_is_sent(make_sender: MakeSender, ingest_receiver: IngestReceiver) -> None:
    sender, _ = make_sender(api_key=None)
    assert not sender.submit(event())
    assert not sender.flush(timeout=10)
    assert ingest_receiver.requests == [] and sender.stats()["dropped_unauthorized"] == 1


def test_per_event_rejections_are_counted(make_sender: MakeSender, ingest_receiver: IngestReceiver) -> None:
    sender, _ = make_sender(batch_size=3)
    sender.submit(event())
    sender.submit(event(model=""))  # the receiver rejects an event without a model
    sender.submit(event())
    assert not sender.flush(timeout=10)
    stats = sender.stats()
    assert (stats["sent"], stats["accepted"], stats["rejected"]) == (3, 2, 1)


def test_a_full_queue_drops_and_counts_without_blocking(make_sender: MakeSender,
                                                        ingest_receiver: IngestReceiver) -> None:
    sender, _ = make_sender(batch_size=1, max_queue_size=5)
    ingest_receiver.hold()
    assert sender.submit(event())
    assert ingest_receiver.arrived.wait(10)  # the worker is now stuck in its first request
    accepted = [sender.submit(event()) for _ in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert sender.stats()["dropped_queue_full"] == 3
    assert not sender.flush(timeout=0.05)  # nothing can finish while ingest holds the request
    ingest_receiver.release.set()
    assert sender.flush(timeout=10)
    assert len(ingest_receiver.events) == 6 and sender.stats()["enqueued"] == 6


def test_an_event_that_cannot_be_built_is_counted_and_the_rest_still_go(
        make_sender: MakeSender, ingest_receiver: IngestReceiver) -> None:
    class Broken:
        def to_event(self) -> dict:
            raise RuntimeError("bug")

    sender, _ = make_sender(batch_size=3)
    sender.submit(event())
    sender.submit(Broken())
    sender.submit(event())
    assert not sender.flush(timeout=10)
    assert len(ingest_receiver.events) == 2 and sender.stats()["internal_errors"] == 1


def test_close_delivers_what_is_queued_then_refuses_more(make_sender: MakeSender,
                                                         ingest_receiver: IngestReceiver) -> None:
    sender, _ = make_sender(batch_size=100)
    for _ in range(3):
        sender.submit(event())
    assert sender.close(timeout=10)
    assert len(ingest_receiver.events) == 3
    assert not sender.submit(event()) and sender.stats()["dropped_failed"] == 1


def test_flush_with_nothing_pending_is_immediate(make_sender: MakeSender) -> None:
    sender, _ = make_sender()
    assert sender.flush(timeout=0)


@given(sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=60),
       max_events=st.integers(min_value=1, max_value=10), max_bytes=st.integers(min_value=20, max_value=1000))
def test_pack_keeps_order_and_limits(sizes: list[int], max_events: int, max_bytes: int) -> None:
    parts = [json.dumps("a" * (size - 2)).encode() for size in sizes]
    groups = list(pack(parts, max_events, max_bytes))
    assert [p for group in groups for p in group] == parts
    for group in groups:
        assert 1 <= len(group) <= max_events
        # Only a single event too large for any body may exceed the byte limit.
        assert len(encode_body(group)) <= max_bytes or len(group) == 1
        assert json.loads(encode_body(group))["events"] == [json.loads(p) for p in group]


def test_a_call_wakes_no_thread_and_the_worker_sends_on_its_own_timer(make_sender: MakeSender,
                                                                       ingest_receiver: IngestReceiver) -> None:
    rng = random.Random()
    batch = rng.randint(5, 40)
    sender, _ = make_sender(batch_size=batch, flush_interval=0.2)
    sender.submit(event())
    assert ingest_receiver.arrived.wait(10)  # no flush(): the worker's own timer sent it
    n = rng.randint(1, batch - 2)
    for i in range(n):
        sender.submit(event(i))
        assert not sender._wakeup.is_set()  # below a full batch, a submit signals nothing
    assert sender.stats()["enqueued"] == n + 1
    deadline = time.monotonic() + 10
    # The receiver holds the events before the sender has read its answer and counted them as sent.
    while (len(ingest_receiver.events) < n + 1 or sender.stats()["sent"] < n + 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(ingest_receiver.events) == n + 1 and sender.stats()["sent"] == n + 1
    sender.close(timeout=5)
