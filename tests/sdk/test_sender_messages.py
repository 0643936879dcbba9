"""What the sender tells a user whose setup is wrong: which URL, why, what to do; and flush()'s verdict."""

from __future__ import annotations

import logging
import random
import socket
import uuid

import pytest
from sdk_ingest_receiver import TOKENTRA_KEY, IngestReceiver

from tokentra.config import Config
from tokentra.sender import Sender


def event() -> dict:
    return {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "m"}


def sender_for(url: str, **options: object) -> Sender:
    settings = {"api_key": TOKENTRA_KEY, "url": url, "flush_interval": 60.0, "backoff_base": 0.01, **options}
    return Sender(Config(**settings), sleep=lambda _: None, rng=random.Random(3))  # type: ignore[arg-type]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tokentra" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("suffix", ["", "/functions", "/api/v1"])
def test_a_wrong_url_says_404_and_how_to_fix_it(ingest_receiver: IngestReceiver, suffix: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # The base URL without /functions/v1 (or another path): the receiver has no ingest there.
    sender = sender_for(ingest_receiver.base_url + suffix, batch_size=2)
    with caplog.at_level(logging.WARNING, logger="tokentra"):
        for _ in range(4):
            sender.submit(event())
        assert not sender.flush(timeout=10)  # every event was refused: not a success
        sender.close(timeout=5)
    [message] = warnings(caplog)
    assert "HTTP 404" in message and f"{ingest_receiver.base_url}{suffix}/ingest" in message
    assert "TOKENTRA_URL" in message and "/functions/v1" in message
    assert TOKENTRA_KEY not in caplog.text
    assert sender.stats()["rejected"] == 4 and ingest_receiver.events == []


def test_unreachable_names_the_url_and_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://someone:hunter2@127.0.0.1:{port}/functions/v1"
    sender = sender_for(url, batch_size=1, max_retries=2)
    with caplog.at_level(logging.WARNING, logger="tokentra"):
        sender.submit(event())
        assert not sender.flush(timeout=10)
        sender.close(timeout=5)
    [message] = warnings(caplog)
    assert f"http://127.0.0.1:{port}/functions/v1/ingest" in message
    assert "unreachable after 3 attempt(s)" in message and "ConnectError" in message
    assert "hunter2" not in caplog.text and "someone" not in caplog.text  # credentials never logged


def test_flush_is_false_when_events_were_lost_and_true_again_once_delivered(
        ingest_receiver: IngestReceiver) -> None:
    sender = sender_for(ingest_receiver.url, batch_size=3, max_retries=1)
    ingest_receiver.fail_next(503, times=2)  # the first batch is given up on
    for _ in range(3):
        sender.submit(event())
    assert not sender.flush(timeout=10)
    assert sender.stats()["dropped_failed"] == 3
    for _ in range(random.Random().randint(1, 7)):
        sender.submit(event())
    assert sender.flush(timeout=10)  # this round everything arrived
    assert sender.flush(timeout=0)  # and nothing was lost since
    sender.close(timeout=5)


def test_a_full_queue_makes_flush_false(ingest_receiver: IngestReceiver) -> None:
    sender = sender_for(ingest_receiver.url, batch_size=1, max_queue_size=2)
    ingest_receiver.hold()
    sender.submit(event())
    assert ingest_receiver.arrived.wait(10)
    results = [sender.submit(event()) for _ in range(5)]
    ingest_receiver.release.set()
    assert results.count(False) == sender.stats()["dropped_queue_full"] > 0
    assert not sender.flush(timeout=10)
    sender.close(timeout=5)


def test_without_a_key_nothing_is_sent_and_it_is_said_once(ingest_receiver: IngestReceiver,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    sender = sender_for(ingest_receiver.url, api_key=None)
    n = random.Random().randint(2, 20)
    with caplog.at_level(logging.WARNING, logger="tokentra"):
        assert not any(sender.submit(event()) for _ in range(n))
        assert not sender.flush(timeout=5)
    assert ingest_receiver.requests == []
    stats = sender.stats()
    assert (stats["requests"], stats["enqueued"], stats["dropped_unauthorized"]) == (0, 0, n)
    assert sender._thread is None  # no background thread for nothing to send
    [message] = warnings(caplog)
    assert "TOKENTRA_API_KEY" in message and "not sent" in message
    sender.close(timeout=1)
