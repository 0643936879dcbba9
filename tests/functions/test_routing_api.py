"""GET /models, GET /route/snapshot and POST /route over real HTTP against the real database."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tokentra_cli import admin
from tokentra_core.db import connect


def call(method: str, url: str, key: str | None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, url, headers={**headers, **kw.pop("headers", {})}, timeout=30, **kw)


def add_rule(dsn: str, org: str, priority: int, conditions, action, share: float = 1.0) -> str:
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.routing_rules (org_id, name, priority, conditions, action, traffic_share) "
            "values (%s, %s, %s, %s::jsonb, %s::jsonb, %s) returning id",
            (org, f"rule-{priority}", priority, _json(conditions), _json(action), share)).fetchone()
    return str(row["id"])


def _json(value) -> str:
    import json

    return json.dumps(value)


def test_models_lists_the_registry_with_the_organizations_quality(functions_url, tenant, dsn):
    # n perfect scores for gpt-4o-mini on summarization, as the feedback API would store them
    now = datetime.now(UTC) - timedelta(minutes=5)
    n = random.randint(3, 9)
    with connect(dsn, autocommit=True) as conn:
        for _ in range(n):
            rid = f"q-{uuid.uuid4()}"
            conn.execute("insert into public.usage_records (org_id, occurred_at, request_id, provider, model, "
                         "task_type) values (%s, %s, %s, 'openai', 'gpt-4o-mini', 'summarization')",
                         (tenant.org_id, now, rid))
            conn.execute("insert into private.usage_request_ids (org_id, request_id, occurred_at) values (%s, %s, %s)",
                         (tenant.org_id, rid, now))
            conn.execute("insert into private.usage_feedback (org_id, request_id, score) values (%s, %s, 1)",
                         (tenant.org_id, rid))
    r = call("GET", f"{functions_url}/models", tenant.key, params={"provider": "openai", "family_only": "true"})
    assert r.status_code == 200, r.text
    rows = {m["model"]: m for m in r.json()["data"]}
    mini = rows["gpt-4o-mini"]
    assert mini["tier"] == "budget" and mini["capabilities"]["tools"] is True and mini["context_window"] == 128000
    assert mini["price"]["input_mtok"] > 0 and mini["max_output_tokens"] > 0
    prior = mini["quality_prior"]["content"]
    assert mini["quality_samples"]["content"] == n
    assert mini["quality"]["content"] == pytest.approx(round((prior * 20 + n) / (20 + n), 4))
    assert all(m["provider"] == "openai" and m["family"] for m in rows.values())
    assert any(m["deprecated"] and m["successor"] for m in
               call("GET", f"{functions_url}/models", tenant.key, params={"provider": "anthropic"}).json()["data"])


def test_route_applies_rules_then_strategy(functions_url, tenant, dsn):
    rule = add_rule(dsn, tenant.org_id, 10, {"feature": "faq"},
                    {"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"})
    add_rule(dsn, tenant.org_id, 5, {"team": "blocked-team"}, {"type": "block"})
    url = f"{functions_url}/route"
    r = call("POST", url, tenant.key, json={"model": "gpt-4o", "feature": "faq", "input_tokens": 900})
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["model"], d["rule_id"], d["arm"], d["routed"]) == ("gpt-4o-mini", rule, "rule", True)
    assert d["fallbacks"] == ["gpt-4o"] and d["estimated_cost"] < d["estimated_original_cost"]
    assert call("POST", url, tenant.key, json={"model": "gpt-4o", "team": "blocked-team"}).json()["blocked"] is True
    # no rule applies: the strategy chooses under the floor, never dearer than asked
    s = call("POST", url, tenant.key, json={"model": "gpt-4o", "task_type": "faq", "input_tokens": 900,
                                            "strategy": "cheapest", "quality_floor": 0.7}).json()
    assert s["arm"] == "strategy" and s["estimated_cost"] <= s["estimated_original_cost"]
    assert s["model"] != "gpt-4o"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"model": "gpt-4o", "strategy": "random"}, 422, "strategy"),
    ({"model": "gpt-4o", "quality_floor": 2}, 422, "quality_floor"),
    ({"model": ""}, 422, "model"),
    ({"input_tokens": 5}, 422, "model"),
    ({"model": "x", "unknown": 1}, 422, "unknown"),
])
def test_route_names_the_bad_field(functions_url, tenant, body, status, field):
    r = call("POST", f"{functions_url}/route", tenant.key, json=body)
    assert r.status_code == status and r.json()["message"].startswith(field), r.text


def test_route_refuses_bad_keys_and_bodies_without_a_500(functions_url, tenant):
    assert call("POST", f"{functions_url}/route", None, json={"model": "x"}).status_code == 401
    assert call("POST", f"{functions_url}/route", "tt_live_" + "x" * 43, json={"model": "x"}).status_code == 401
    assert call("POST", f"{functions_url}/route", tenant.key, content=b"{nope").status_code == 400
    assert call("POST", f"{functions_url}/route", tenant.key, content=b"[" * 20000).status_code == 413
    nested = random.randint(2000, 7000)  # under the size limit, deeper than a recursive parser goes
    deep = call("POST", f"{functions_url}/route", tenant.key, content=b"[" * nested + b"]" * nested)
    assert deep.status_code in (400, 422) and deep.json()["error"] in ("not_json", "invalid_request"), deep.text
    assert call("GET", f"{functions_url}/models", None).status_code == 401


def test_snapshot_carries_the_rules_and_honours_its_etag(functions_url, tenant, dsn):
    rule = add_rule(dsn, tenant.org_id, 1, [{"field": "input_tokens", "operator": "gt", "value": 5000}],
                    {"type": "compress_prompt", "level": "light"})
    r = call("GET", f"{functions_url}/route/snapshot", tenant.key)
    assert r.status_code == 200
    snap = r.json()
    assert [x["id"] for x in snap["rules"]] == [rule] and len(snap["models"]) > 20
    again = call("GET", f"{functions_url}/route/snapshot", tenant.key, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    add_rule(dsn, tenant.org_id, 2, {}, {"type": "block"})
    changed = call("GET", f"{functions_url}/route/snapshot", tenant.key, headers={"If-None-Match": r.headers["etag"]})
    assert changed.status_code == 200 and len(changed.json()["rules"]) == 2


def test_openapi_documents_the_route_body(functions_url):
    doc = httpx.get(f"{functions_url}/openapi.json", timeout=30).json()
    schema = doc["paths"]["/functions/v1/route"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "strategy", "quality_floor", "task_type"} <= set(schema["properties"])
    assert "/functions/v1/models" in doc["paths"]


def refused_within(url: str, key: str, within: float = 2.0) -> float:
    """Seconds until POST /route answers the key 401: a change to a key reaches each server process's key
    cache by a notification, moments after the statement that made it commits."""
    started = time.monotonic()
    while True:
        r = call("POST", url, key, json={"model": "gpt-4o"})
        if r.status_code == 401:
            return time.monotonic() - started
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < within, f"the key still routed {within} s after the change"
        time.sleep(0.02)


@pytest.mark.parametrize("change", [
    "update public.api_keys set revoked_at = now() where id = %s",
    "update public.api_keys set expires_at = now() - interval '1 second' where id = %s",
    "update public.api_keys set scopes = '{budgets}' where id = %s",  # no scope /route accepts
    "delete from public.api_keys where id = %s",
])
def test_route_refuses_a_changed_key_within_moments(functions_url, dsn, change):
    """/route serves verified keys from memory; a revoked, expired, re-scoped or deleted key is refused
    within 2 s all the same (the cache's own bound is longer), and from then on."""
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"test-{uuid.uuid4().hex[:8]}")
        key, other = admin.create_key(conn, org.id), admin.create_key(conn, org.id, name="other")
    url = f"{functions_url}/route"
    for _ in range(random.randint(2, 6)):  # verified once, then served from the cache
        assert call("POST", url, key.key, json={"model": "gpt-4o"}).status_code == 200
        assert call("POST", url, other.key, json={"model": "gpt-4o"}).status_code == 200
    with connect(dsn, autocommit=True) as conn:
        conn.execute(change, (key.id,))
    refused_within(url, key.key)
    for _ in range(random.randint(2, 6)):
        assert call("POST", url, key.key, json={"model": "gpt-4o"}).status_code == 401
    # the organization's other key is untouched
    assert call("POST", url, other.key, json={"model": "gpt-4o"}).status_code == 200


def test_route_serves_a_verified_key_from_memory_until_a_change_is_announced(functions_url, dsn):
    """What makes /route fast is that a verified key is not read again per request; what keeps it safe is
    the announcement. With the trigger bypassed, the revoked key still routes (served from memory, for at
    most api_key_cache_seconds); once the change is announced as the trigger would, it is refused."""
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"test-{uuid.uuid4().hex[:8]}")
        key = admin.create_key(conn, org.id)
    url = f"{functions_url}/route"
    for _ in range(5):  # the listener starts with the first cached request; from then on keys are kept
        assert call("POST", url, key.key, json={"model": "gpt-4o"}).status_code == 200
        time.sleep(0.1)
    with connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("set local session_replication_role = replica")  # ordinary triggers do not fire
        conn.execute("update public.api_keys set revoked_at = now() where id = %s", (key.id,))
    assert call("POST", url, key.key, json={"model": "gpt-4o"}).status_code == 200
    with connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_notify('tokentra_gateway_keys', %s)", (str(key.id),))
    refused_within(url, key.key)


def test_route_counts_every_request_and_refuses_past_the_rate_limit(functions_url, dsn):
    """A cached key's requests are counted after their answers: each one is counted, and once the count
    passes the key's limit the next requests are refused (429 with Retry-After) until it has slid out."""
    limit = random.randint(3, 9)
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"test-{uuid.uuid4().hex[:8]}")
        key = admin.create_key(conn, org.id)
        conn.execute("update public.api_keys set rate_limit_per_minute = %s where id = %s", (limit, key.id))
    if datetime.now(UTC).second > 50:  # one minute's window for the whole test
        time.sleep(61 - datetime.now(UTC).second)
    url = f"{functions_url}/route"
    answers = []
    for _ in range(limit + 6):
        answers.append(call("POST", url, key.key, json={"model": "gpt-4o"}))
        time.sleep(0.05)  # each count lands before the next call here; concurrent calls may pass a few
    codes = [r.status_code for r in answers]
    assert codes[:limit] == [200] * limit, codes  # never refused under the limit
    first = codes.index(429)  # refused at the latest one call after the limit
    assert first <= limit + 1 and set(codes[first:]) == {429}, codes
    # the window slides: a minute filled past its limit still weighs on the next one for a while
    assert 1 <= int(answers[first].headers["retry-after"]) <= 120
    assert answers[first].json()["error"] == "rate_limited"
    with connect(dsn) as conn:  # every admitted request was counted
        deadline = time.monotonic() + 2
        while True:
            counted = conn.execute("select coalesce(sum(requests), 0) as n from private.api_key_rate_windows "
                                   "where key_id = %s", (key.id,)).fetchone()["n"]
            conn.rollback()
            if counted == first or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert counted == first, (counted, codes)
