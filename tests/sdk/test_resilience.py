"""TokenTRA never breaks, blocks or slows the customer's call, whatever goes wrong on its side."""

from __future__ import annotations

import socket

import openai
import pytest
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra
from tokentra import _instrument, _observe, _state

MESSAGES = [{"role": "user", "content": "hi"}]


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("tokentra bug")


def test_a_failure_while_starting_to_record_is_swallowed(openai_client: openai.OpenAI, sdk: IngestReceiver,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_observe, "Call", _boom)
    # A plainly wrapped client starts its record itself, with the record type it takes when first used.
    monkeypatch.setattr(_instrument, "plain_call_type", lambda *args: _boom)
    reply = openai_client.chat.completions.create(model="m", messages=MESSAGES, tokentra_tags={"a": "b"})
    assert reply.choices[0].message.content == "Paris."
    assert tokentra.stats()["internal_errors"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_while_handing_over_the_event_is_swallowed(
        openai_client: openai.OpenAI, sdk: IngestReceiver, monkeypatch: pytest.MonkeyPatch,
        stream: bool) -> None:
    monkeypatch.setattr(_state, "submit", _boom)
    reply = openai_client.chat.completions.create(model="m", messages=MESSAGES, stream=stream)
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in reply if c.choices) == "Paris."
    assert tokentra.stats()["internal_errors"] == 1


def test_a_failing_stream_observer_does_not_disturb_the_stream(openai_client: openai.OpenAI,
                                                               sdk: IngestReceiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = _observe.ENDPOINTS["chat.completions"]
    monkeypatch.setitem(_observe.ENDPOINTS, "chat.completions", endpoint._replace(observe_event=_boom))
    raw = openai_client.__wrapped__  # a fresh wrap picks up the patched endpoint
    chunks = list(tokentra.wrap(raw).chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(chunks) == 5
    assert tokentra.stats()["internal_errors"] == 5
    [event] = flushed(sdk)
    assert event["status"] == "success"  # read to the end, though usage could not be seen


def test_calls_go_on_while_ingest_hangs(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    tokentra.configure(batch_size=1)
    sdk.hold()
    openai_client.chat.completions.create(model="m", messages=MESSAGES)
    assert sdk.arrived.wait(10)  # the sender is now stuck waiting for an answer
    for _ in range(5):
        assert openai_client.chat.completions.create(model="m", messages=MESSAGES).choices
    sdk.release.set()
    assert len(flushed(sdk)) == 6


def test_calls_go_on_when_ingest_is_unreachable(openai_client: openai.OpenAI) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tokentra.configure(url=f"http://127.0.0.1:{port}/functions/v1", max_retries=0)
    for _ in range(3):
        assert openai_client.chat.completions.create(model="m", messages=MESSAGES).choices
    assert not tokentra.flush(timeout=10)  # the calls went on; the events did not arrive, and flush says so
    assert tokentra.stats()["dropped_failed"] == 3
