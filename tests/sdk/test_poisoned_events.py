"""One unstorable value never costs the SDK a batch: events are cleaned before they leave, a refusal of one
event is final for that event only, and a whole request refused with 400/422 is halved until the culprit
stands alone."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sdk_fake_providers import PROVIDER_KEY, ProviderServer
from sdk_ingest_receiver import TOKENTRA_KEY, IngestReceiver

import tokentra
from tokentra import _state
from tokentra._sanitize import encode_event
from tokentra.config import Config
from tokentra.sender import Sender
from tokentra_core.db import connect

POISONED_TAGS = [
    {"feature": "bad\x00tag"},
    {"feature": "ok", "note": float("nan")},
    {"team": "lone \ud800 surrogate"},
    {"feature": "huge", "blob": "z" * 40_000},
    {"feature": "inf", "ratio": float("-inf")},
    {"feature": "reserved", "tokentra": "mine"},
]


def test_poisoned_tags_cost_no_event_of_the_batch(functions_url, tenant, dsn) -> None:
    """100 wrapped calls in one batch, five of them tagged with values Postgres cannot store as sent."""
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=60.0, batch_size=100,
                       backoff_base=0.01, max_retries=1)
    poisoned_at = dict(zip(random.Random(11).sample(range(100), len(POISONED_TAGS)), POISONED_TAGS, strict=True))
    try:
        with ProviderServer({"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}) as provider:
            client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0))
            for i in range(100):
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                               tokentra_tags=poisoned_at.get(i, {"feature": f"f{i}"}))
        assert tokentra.flush(30)
        stats = tokentra.stats()
    finally:
        _state.reset()
    assert (stats["accepted"], stats["rejected"], stats["dropped_failed"], stats["retries"]) == (100, 0, 0, 0), stats
    with connect(dsn) as conn:
        rows = conn.execute("select feature, team, metadata from public.usage_records where org_id = %s",
                            (tenant.org_id,)).fetchall()
    assert len(rows) == 100
    features = {r["feature"] for r in rows}
    assert {"badtag", "huge", "inf", "reserved"} <= features
    assert any(r["team"] and r["team"].startswith("lone ") for r in rows)
    assert not any("ratio" in r["metadata"] and r["metadata"]["ratio"] is not None for r in rows)


def test_a_refused_event_is_final_for_itself_only(functions_url, tenant, dsn) -> None:
    """An event the SDK cannot repair (a boolean token count) is refused alone; 99 others are stored."""
    sender = Sender(Config(api_key=tenant.key, url=functions_url, flush_interval=60.0, batch_size=100,
                           backoff_base=0.01))
    now = datetime.now(UTC).isoformat()
    events = [{"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 10,
               "output_tokens": 2, "timestamp": now} for _ in range(100)]
    events[37]["input_tokens"] = True
    for e in events:
        assert sender.submit(e)
    assert not sender.flush(30)  # one event was refused
    stats = sender.stats()
    sender.close(5)
    assert (stats["accepted"], stats["rejected"], stats["retries"], stats["requests"]) == (99, 1, 0, 1), stats
    with connect(dsn) as conn:
        n = conn.execute("select count(*) as n from public.usage_records where org_id = %s",
                         (tenant.org_id,)).fetchone()["n"]
    assert n == 99


@pytest.mark.parametrize(("status", "delivered", "requests"), [(422, 10, 3), (400, 10, 3), (404, 0, 1)])
def test_a_whole_request_refused_with_400_or_422_is_halved_until_the_rest_is_delivered(
        ingest_receiver: IngestReceiver, status: int, delivered: int, requests: int) -> None:
    sender = Sender(Config(api_key=TOKENTRA_KEY, url=ingest_receiver.url, flush_interval=60.0, batch_size=10),
                    sleep=lambda _: None)
    ingest_receiver.fail_next(status)
    for i in range(10):
        sender.submit({"request_id": f"r{i}", "provider": "openai", "model": "m"})
    sender.flush(10)
    sender.close(5)
    assert len(ingest_receiver.events) == delivered
    assert [len(r.events) or len(json.loads(r.body)["events"]) for r in ingest_receiver.requests][:1] == [10]
    assert len(ingest_receiver.requests) == requests


# Any text, NUL and unpaired surrogates included; any float, NaN and the infinities included.
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT | st.text(min_size=2_000, max_size=6_000),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=30)


@given(metadata=st.dictionaries(ANY_TEXT, JSONISH, max_size=6),
       raw_usage=st.none() | st.dictionaries(ANY_TEXT, JSONISH, max_size=4),
       model=ANY_TEXT, depth=st.integers(0, 40))
def test_any_event_encodes_to_json_ingest_can_store(metadata, raw_usage, model, depth) -> None:
    nested: object = 1
    for _ in range(depth):
        nested = {"d": nested}
    event = {"request_id": "r", "model": model, "metadata": {**metadata, "nested": nested, "tokentra": 1},
             "raw_usage": raw_usage}
    data = encode_event(event)
    text = data.decode("utf-8")  # valid UTF-8: no unpaired surrogate made it through
    assert "\\u0000" not in text and "\x00" not in text
    decoded = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text[:80]}"))
    assert _depth(decoded["metadata"]) <= 16 and _depth(decoded.get("raw_usage")) <= 16
    assert "tokentra" not in decoded["metadata"]
    for part in ("metadata", "raw_usage"):
        if decoded.get(part) is not None:
            assert len(json.dumps(decoded[part], ensure_ascii=False, separators=(",", ":")).encode()) <= 16_384


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0
