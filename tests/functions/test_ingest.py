"""The ingest function, over real HTTP against the real database."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tokentra_cli import admin
from tokentra_core.db import connect


def event(**over) -> dict:
    base = {
        "request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini",
        "endpoint": "chat.completions", "input_tokens": 1200, "output_tokens": 300, "cached_tokens": 200,
        "latency_ms": 840, "status": "success", "prompt_hash": "ab" * 32,
        "metadata": {"feature": "summarize", "team": "search", "user_id": "u-1", "ticket": 7},
        "timestamp": datetime.now(UTC).isoformat(),
    }
    base.update(over)
    return base


def post(url: str, key: str | None, body, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/ingest", content=content, headers={**headers, **kw.pop("headers", {})}, timeout=30)


def stored(dsn: str, org: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("select * from public.usage_records where org_id = %s order by request_id",
                            (org,)).fetchall()


def test_valid_batch_is_stored_with_attribution(functions_url, tenant, dsn):
    events = [event(), event(model="claude-sonnet-4-20250514", provider="anthropic")]
    r = post(functions_url, tenant.key, {"events": events})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0, "unpriced": 0, "rejected": []}
    rows = stored(dsn, tenant.org_id)
    assert {row["request_id"] for row in rows} == {e["request_id"] for e in events}
    row = next(x for x in rows if x["model"] == "gpt-4o-mini")
    assert (row["feature"], row["team"], row["end_user_id"]) == ("summarize", "search", "u-1")
    assert row["metadata"] == {"ticket": 7}
    assert row["priced"] and row["cost_usd"] > 0
    assert str(row["api_key_id"]) == tenant.key_id


def test_x_api_key_header_is_accepted(functions_url, tenant):
    r = post(functions_url, None, {"events": [event()]}, headers={"x-api-key": tenant.key})
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_invalid_events_are_rejected_by_index_and_field_while_valid_ones_are_stored(functions_url, tenant, dsn):
    now = datetime.now(UTC)
    events = [
        event(),
        event(input_tokens=-1),
        event(timestamp=(now + timedelta(minutes=10)).isoformat()),
        event(timestamp=(now - timedelta(days=401)).isoformat()),
        event(cached_tokens=5000),
        {"provider": "openai"},
        event(),
    ]
    r = post(functions_url, tenant.key, {"events": events})
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 2
    by_index = {x["index"]: x for x in body["rejected"]}
    assert set(by_index) == {1, 2, 3, 4, 5}
    assert by_index[1]["field"] == "input_tokens"
    assert by_index[2]["field"] == "timestamp" and "future" in by_index[2]["message"]
    assert by_index[3]["field"] == "timestamp" and "retention" in by_index[3]["message"]
    assert "cached_tokens" in by_index[4]["message"]
    assert by_index[5]["field"] in ("request_id", "model", "timestamp")
    assert len(stored(dsn, tenant.org_id)) == 2


def test_retries_are_stored_once_even_with_another_timestamp(functions_url, tenant, dsn):
    e = event()
    assert post(functions_url, tenant.key, {"events": [e]}).json()["accepted"] == 1
    again = post(functions_url, tenant.key, {"events": [e, e]}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    later = dict(e, timestamp=(datetime.now(UTC) - timedelta(days=3)).isoformat())
    assert post(functions_url, tenant.key, {"events": [later]}).json()["duplicates"] == 1
    assert len(stored(dsn, tenant.org_id)) == 1


def test_same_request_id_in_one_batch_is_stored_once(functions_url, tenant, dsn):
    e = event()
    body = post(functions_url, tenant.key, {"events": [e, e]}).json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert len(stored(dsn, tenant.org_id)) == 1


def test_a_duplicate_with_other_content_is_a_conflict_and_never_overwrites(functions_url, tenant, dsn):
    e = event()
    post(functions_url, tenant.key, {"events": [e]})
    body = post(functions_url, tenant.key, {"events": [dict(e, output_tokens=999)]}).json()
    assert body["accepted"] == 0 and body["rejected"][0]["field"] == "request_id"
    assert "conflict" in body["rejected"][0]["message"]
    assert stored(dsn, tenant.org_id)[0]["output_tokens"] == 300


def test_same_request_id_in_two_organizations_is_two_events(functions_url, tenant, dsn):
    with connect(dsn, autocommit=True) as conn:
        other_org = admin.create_org(conn, "other")
        other_key = admin.create_key(conn, other_org.id)
    e = event()
    assert post(functions_url, tenant.key, {"events": [e]}).json()["accepted"] == 1
    assert post(functions_url, other_key.key, {"events": [e]}).json()["accepted"] == 1


def test_concurrent_retries_store_the_event_exactly_once(functions_url, tenant, dsn):
    batch = {"events": [event() for _ in range(50)]}
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda _: post(functions_url, tenant.key, batch).json(), range(12)))
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["duplicates"] for r in results) == 50 * 11
    assert len(stored(dsn, tenant.org_id)) == 50


def test_unknown_model_is_stored_unpriced_and_counted(functions_url, tenant, dsn):
    body = post(functions_url, tenant.key, {"events": [event(model="acme-llm-9000", provider="acme")]}).json()
    assert (body["accepted"], body["unpriced"]) == (1, 1)
    row = stored(dsn, tenant.org_id)[0]
    assert not row["priced"] and row["cost_usd"] is None


def test_client_cost_is_kept_beside_ours(functions_url, tenant, dsn):
    r = post(functions_url, tenant.key, {"events": [event(cost_usd="0.0123")]})
    assert r.json()["accepted"] == 1, r.text
    row = stored(dsn, tenant.org_id)[0]
    assert str(row["client_cost_usd"]).startswith("0.0123") and row["cost_usd"] != row["client_cost_usd"]


@pytest.mark.parametrize("case", ["missing", "malformed", "unknown", "revoked", "expired"])
def test_bad_keys_get_identical_401_bodies(functions_url, tenant, dsn, case):
    reference = post(functions_url, "tt_live_" + "x" * 43, {"events": [event()]})
    key = {"missing": None, "malformed": "nope", "unknown": "tt_live_" + "y" * 43}.get(case, tenant.key)
    with connect(dsn, autocommit=True) as conn:
        if case == "revoked":
            admin.revoke_key(conn, tenant.key_id)
        if case == "expired":
            conn.execute("update public.api_keys set expires_at = now() - interval '1 second' where id = %s",
                         (tenant.key_id,))
    r = post(functions_url, key, {"events": [event()]})
    assert r.status_code == 401
    assert r.content == reference.content
    assert stored(dsn, tenant.org_id) == []


def test_shape_errors(functions_url, tenant):
    assert post(functions_url, tenant.key, b"{not json").status_code == 400
    r = post(functions_url, tenant.key, {"items": []})
    assert r.status_code == 422 and "events" in r.json()["message"]
    assert post(functions_url, tenant.key, {"events": [event() for _ in range(1001)]}).status_code == 413
    big = {"events": [event(metadata={"pad": "x" * 15000}) for _ in range(80)]}
    assert post(functions_url, tenant.key, big).status_code == 413


def test_rate_limit_answers_429_with_retry_after(functions_url, tenant, dsn):
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update public.api_keys set rate_limit_per_minute = 2 where id = %s", (tenant.key_id,))
    codes = [post(functions_url, tenant.key, {"events": []}) for _ in range(3)]
    assert [c.status_code for c in codes[:2]] == [200, 200]
    assert codes[2].status_code == 429 and int(codes[2].headers["retry-after"]) >= 1
