"""Settings from the environment and configure(), process exit, and the public stats."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sdk_ingest_receiver import TOKENTRA_KEY, IngestReceiver

import tokentra
from tokentra import _state
from tokentra.config import DEFAULT_URL, Config


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    _state.reset()
    yield
    _state.reset()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENTRA_API_KEY", "tt_env")
    monkeypatch.setenv("TOKENTRA_URL", "http://example.test/functions/v1/")
    config = _state.get_config()
    assert (config.api_key, config.url) == ("tt_env", "http://example.test/functions/v1")
    assert config.ingest_url == "http://example.test/functions/v1/ingest"


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENTRA_API_KEY", raising=False)
    monkeypatch.delenv("TOKENTRA_URL", raising=False)
    assert _state.get_config().url == DEFAULT_URL == "http://127.0.0.1:54321/functions/v1"
    config = tokentra.configure(api_key="tt_x", url="http://h/f", batch_size=7)
    assert (config.api_key, config.url, config.batch_size) == ("tt_x", "http://h/f", 7)
    assert tokentra.configure(flush_interval=2.0).api_key == "tt_x"  # other settings are kept
    with pytest.raises(TypeError):
        tokentra.configure(no_such_option=1)
    with pytest.raises(ValueError):
        tokentra.configure(batch_size=1001)


def test_the_api_key_is_not_in_the_settings_repr() -> None:
    assert "tt_hidden" not in repr(Config(api_key="tt_hidden"))


def test_stats_lists_every_counter() -> None:
    assert set(tokentra.stats()) == {
        "enqueued", "queued", "sent", "accepted", "duplicates", "rejected", "dropped_queue_full",
        "dropped_failed", "dropped_unauthorized", "retries", "requests", "internal_errors",
    }
    assert tokentra.flush(timeout=0)


def test_events_queued_at_exit_are_delivered(ingest_receiver: IngestReceiver) -> None:
    # A real interpreter exit: only the atexit hook can deliver this event.
    script = textwrap.dedent(f"""
        import tokentra
        from tokentra import _state
        tokentra.configure(api_key={TOKENTRA_KEY!r}, url={ingest_receiver.url!r}, flush_interval=60)
        _state.submit({{"request_id": "exit-1", "provider": "openai", "model": "m"}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert [e["request_id"] for e in ingest_receiver.events] == ["exit-1"]
