"""One bad event never costs the others: each poisoned event is refused by index, field and reason, every
valid event of its batch is stored, and no body gets a 500. Over real HTTP against the real database."""

from __future__ import annotations

import json
import random
import string
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentra_core.db import connect

DEEP = 100_000


def event(**over) -> dict:
    base = {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1200,
            "output_tokens": 300, "cached_tokens": 200, "latency_ms": 840, "status": "success",
            "metadata": {"feature": "summarize", "team": "search", "user_id": "u-1", "ticket": 7},
            "timestamp": datetime.now(UTC).isoformat()}
    base.update(over)
    return base


def body_of(events: list) -> bytes:
    # allow_nan: Python's json writes NaN and Infinity, as a careless client would send them.
    return json.dumps({"events": events}, allow_nan=True).encode()


def post(url: str, key: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}/ingest", content=body, timeout=60,
                      headers={"Authorization": f"Bearer {key}", "content-type": "application/json"})


def stored_ids(dsn: str, org: str) -> set[str]:
    with connect(dsn) as conn:
        rows = conn.execute("select request_id from public.usage_records where org_id = %s", (org,)).fetchall()
    return {r["request_id"] for r in rows}


def deep_json(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def with_raw(events_json: list[bytes]) -> bytes:
    return b'{"events": [' + b", ".join(events_json) + b"]}"


NOW = datetime.now(UTC)
# (name, the poisoned event (dict, or raw JSON bytes of it), the field the rejection must name)
CASES = [
    ("NUL in model", event(model="x\u0000"), "model"),
    ("NUL in request_id", event(request_id="a\u0000b"), "request_id"),
    ("NUL in a metadata key", event(metadata={"k\u0000": 1}), "metadata"),
    ("NUL in a metadata value", event(metadata={"k": ["ok", "v\u0000"]}), "metadata.k[1]"),
    ("NUL in feature", event(metadata={"feature": "f\u0000"}), "metadata.feature"),
    ("NUL in error_code", event(status="error", error_code="e\u0000"), "error_code"),
    ("NUL in raw_usage", event(raw_usage={"details": {"x": "\u0000"}}), "raw_usage.details.x"),
    ("NUL in a raw_usage key", event(raw_usage={"\u0000": 1}), "raw_usage"),
    ("NaN in metadata", event(metadata={"x": float("nan")}), "metadata.x"),
    ("Infinity in metadata", event(metadata={"x": {"y": float("inf")}}), "metadata.x.y"),
    ("-Infinity as a team", event(metadata={"team": float("-inf")}), "metadata.team"),
    ("NaN in raw_usage", event(raw_usage={"prompt_tokens": float("nan")}), "raw_usage.prompt_tokens"),
    ("true as a token count", event(input_tokens=True), "input_tokens"),
    ("false as a latency", event(latency_ms=False), "latency_ms"),
    ("raw_usage past 16 KiB", event(raw_usage={"pad": "x" * 20_000}), "raw_usage"),
    ("metadata past 16 KiB", event(metadata={"pad": "x" * 20_000}), "metadata"),
    ("metadata 17 levels deep", event(metadata=json.loads(deep_json(17))), "metadata"),
    ("client cost past numeric(20,12)", event(cost_usd="123456789"), "cost_usd"),
    ("not an object", 5, "event"),
]


@pytest.mark.parametrize(("name", "bad", "field"), CASES, ids=[c[0] for c in CASES])
def test_a_poisoned_event_is_refused_by_field_and_the_valid_ones_are_stored(functions_url, tenant, dsn, name, bad,
                                                                             field):
    good = [event(), event()]
    r = post(functions_url, tenant.key, body_of([good[0], bad, good[1]]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [(1, field)], body["rejected"]
    assert body["rejected"][0]["message"]
    assert stored_ids(dsn, tenant.org_id) == {g["request_id"] for g in good}


@pytest.mark.parametrize("where", ["metadata", "raw_usage"])
def test_metadata_nested_100000_deep_costs_only_its_event(functions_url, tenant, dsn, where):
    good = [event(), event()]
    bad = json.dumps(event()).encode()[:-1] + f', "{where}": '.encode() + deep_json(DEEP) + b"}"
    r = post(functions_url, tenant.key, with_raw([json.dumps(good[0]).encode(), bad, json.dumps(good[1]).encode()]))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert [(x["index"], x["field"]) for x in r.json()["rejected"]] == [(1, where)]
    assert stored_ids(dsn, tenant.org_id) == {g["request_id"] for g in good}


def test_an_unpaired_surrogate_escape_costs_only_its_event(functions_url, tenant, dsn):
    good = event()
    bad = json.dumps(event(model="\ud800x")).encode()  # ensure_ascii writes it as the escape \ud800
    assert b"\\ud800" in bad
    r = post(functions_url, tenant.key, with_raw([bad, json.dumps(good).encode()]))
    assert r.status_code == 200, r.text
    assert [(x["index"], x["field"]) for x in r.json()["rejected"]] == [(0, "model")]
    assert stored_ids(dsn, tenant.org_id) == {good["request_id"]}


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"[" * DEEP + b"]" * DEEP, 400, "too_deep"),
    (b'{"events": [], "other": ' + deep_json(DEEP) + b"}", 400, "too_deep"),
    (b'{"events": [{"request_id": "x"}] trailing}', 400, "not_json"),
    (b'{"events": [{"request_id": "x"}', 400, "not_json"),
    (b'{"events": {"request_id": "x"}}', 422, "invalid_request"),
    (b'"events"', 422, "invalid_request"),
])
def test_a_body_that_is_not_a_batch_gets_a_clear_4xx_and_stores_nothing(functions_url, tenant, dsn, body, status,
                                                                         code):
    r = post(functions_url, tenant.key, body)
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert stored_ids(dsn, tenant.org_id) == set()


@pytest.mark.parametrize("offset", ["+16:00", "+23:59", "-18:30"])
def test_any_utc_offset_is_stored_as_the_instant_it_names(functions_url, tenant, dsn, offset):
    hours, minutes = int(offset[1:3]), int(offset[4:])
    sign = 1 if offset[0] == "+" else -1
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    instant = (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)
    e = event(timestamp=instant.astimezone(zone).isoformat())
    assert e["timestamp"].endswith(offset)
    r = post(functions_url, tenant.key, body_of([e]))
    assert r.json()["accepted"] == 1, r.text
    with connect(dsn) as conn:
        row = conn.execute("select occurred_at from public.usage_records where org_id = %s",
                           (tenant.org_id,)).fetchone()
    assert row["occurred_at"] == instant


def test_retries_of_events_stored_before_stay_duplicates(functions_url, tenant, dsn):
    """The content hash is the one ingest always computed: a fixed event's hash is pinned here."""
    e = {"request_id": "pinned-hash-1", "provider": "OpenAI", "model": "gpt-4o", "input_tokens": 10,
         "output_tokens": 2, "metadata": {"team": "a", "z": [1, 2.5], "feature": "f"}, "status": "timeout",
         "raw_usage": {"prompt_tokens": 10}, "cost_usd": "0.001", "prefix_hash": "ab" * 16, "prefix_share": 0.5,
         "timestamp": datetime.now(UTC).isoformat()}
    assert post(functions_url, tenant.key, body_of([e])).json()["accepted"] == 1
    with connect(dsn) as conn:
        row = conn.execute("select content_hash from public.usage_records where org_id = %s",
                           (tenant.org_id,)).fetchone()
    assert bytes(row["content_hash"]).hex() == "20d0a181c9dfdcad73fb66de09cdbaa9a307930e8653453c6e6ab1e20204f80e"
    assert post(functions_url, tenant.key, body_of([dict(e, timestamp=NOW.isoformat())])).json()["duplicates"] == 1


# ---------------------------------------------------------------- any mix of poisoned events
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
SCALAR = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False) \
    | TEXT
JSON_VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                          max_leaves=8)


@st.composite
def valid_event(draw) -> dict:
    """A valid event of random shape: optional fields on or off, any metadata, any offset in the window."""
    tokens = draw(st.integers(0, 200_000))
    cached = draw(st.integers(0, tokens))
    out = draw(st.integers(0, 50_000))
    metadata = draw(st.dictionaries(TEXT.filter(lambda k: k != "tokentra"), JSON_VALUE, max_size=4))
    for key in ("feature", "team", "project", "user_id"):
        if draw(st.booleans()):
            metadata[key] = draw(TEXT)
    offset = draw(st.integers(-23 * 60, 23 * 60))
    moment = datetime.now(UTC) - timedelta(seconds=draw(st.integers(0, 300 * 86_400)))
    e = {"request_id": f"prop-{uuid.uuid4()}", "provider": draw(st.sampled_from(["openai", "anthropic", "acme"])),
         "model": draw(st.sampled_from(["gpt-4o-mini", "claude-sonnet-4-20250514", "made-up-model"])),
         "input_tokens": tokens, "cached_tokens": cached, "output_tokens": out, "metadata": metadata,
         "timestamp": moment.astimezone(timezone(timedelta(minutes=offset))).isoformat()}
    if draw(st.booleans()):
        e["raw_usage"] = draw(st.dictionaries(TEXT, JSON_VALUE, max_size=4))
    if draw(st.booleans()):
        e.update(status="error", error_code=draw(TEXT), latency_ms=draw(st.integers(0, 86_400_000)))
    return e


def _nul_in_text(rng: random.Random, e: dict) -> None:
    name = rng.choice(["request_id", "model", "provider", "error_code", "endpoint", "task_type", "service_tier"])
    text = str(e.get(name) or "x")[:40]
    at = rng.randint(0, len(text))
    e[name] = text[:at] + "\u0000" + text[at:]


def _nul_in_json(rng: random.Random, e: dict) -> None:
    where = rng.choice(["metadata", "raw_usage"])
    value = "v\u0000" if rng.random() < 0.5 else {"k\u0000": 1}
    e[where] = {**(e.get(where) or {}), "".join(rng.choices(string.ascii_letters, k=6)): value}


def _not_finite(rng: random.Random, e: dict) -> None:
    where = rng.choice(["metadata", "raw_usage"])
    e[where] = {**(e.get(where) or {}), "n": {"m": rng.choice([float("nan"), float("inf"), float("-inf")])}}


def _deep(rng: random.Random, e: dict) -> None:
    e[rng.choice(["metadata", "raw_usage"])] = json.loads(deep_json(rng.choice([17, 40, 150])))


def _boolean_count(rng: random.Random, e: dict) -> None:
    e[rng.choice(["input_tokens", "output_tokens", "retry_count"])] = rng.choice([True, False])


def _bad_time(rng: random.Random, e: dict) -> None:
    days = rng.choice([-1, 401, 5000])
    e["timestamp"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()


def _too_big(rng: random.Random, e: dict) -> None:
    e[rng.choice(["metadata", "raw_usage"])] = {"pad": "y" * rng.randint(16_400, 30_000)}


def _parts(rng: random.Random, e: dict) -> None:
    e["cached_tokens"] = e.get("input_tokens", 0) + rng.randint(1, 100)


def _shape(rng: random.Random, e: dict) -> None:
    del e[rng.choice(["request_id", "model", "timestamp"])]


POISONS = [_nul_in_text, _nul_in_json, _not_finite, _deep, _boolean_count, _bad_time, _too_big, _parts, _shape]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(events=st.lists(valid_event(), min_size=0, max_size=12),
       poisoned=st.lists(st.tuples(st.integers(0, len(POISONS) - 1), st.integers(0, 2**32)), max_size=6),
       placement=st.randoms(use_true_random=False))
def test_any_batch_stores_exactly_its_valid_events(functions_url, tenant, dsn, events, poisoned, placement):
    batch: list[dict | int] = list(events)
    bad_ids: list[str] = []
    for which, seed in poisoned:
        rng = random.Random(seed)
        e = event(request_id=f"poison-{uuid.uuid4()}")
        POISONS[which](rng, e)
        bad_ids.append(str(e.get("request_id")))
        batch.insert(placement.randint(0, len(batch)), e)
    bad_at = {i for i, e in enumerate(batch) if isinstance(e, dict) and str(e.get("request_id")) in bad_ids}
    r = post(functions_url, tenant.key, body_of(batch))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {x["index"] for x in body["rejected"]} == bad_at, body["rejected"]
    assert body["accepted"] == len(events)
    asked = [e["request_id"] for e in events] + [i for i in bad_ids if "\x00" not in i]  # text holds no NUL
    with connect(dsn) as conn:
        rows = conn.execute("select request_id from public.usage_records where org_id = %s and request_id = any(%s)",
                            (tenant.org_id, asked)).fetchall()
    assert {row["request_id"] for row in rows} == {e["request_id"] for e in events}
