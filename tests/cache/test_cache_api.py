"""The semantic cache over HTTP, against the real server, database and local embedding model."""

from __future__ import annotations

import random
import uuid

import httpx
import psycopg
import pytest

from secret_registry import SECRETS_SEEN

pytestmark = pytest.mark.usefixtures("functions_url")

COUNTRIES = ["France", "Spain", "Italy", "Japan", "Brazil", "Canada", "Kenya", "Norway", "Peru", "Egypt"]


def _turn_on(dsn: str, org_id: str, store_responses: bool = True) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses)"
                     " values (%s, true, %s) on conflict (org_id) do update"
                     " set enabled = true, store_responses = excluded.store_responses",
                     (org_id, store_responses))


def _post(url: str, key: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/cache/{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _request(text: str, **extra: object) -> dict:
    return {"provider": "openai", "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
            "params": {"temperature": 0}, **extra}


def _answer(text: str) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}


@pytest.mark.parametrize("seed", [random.randrange(10_000) for _ in range(2)])
def test_store_then_exact_semantic_and_guarded_lookups(functions_url: str, dsn: str, tenant, seed: int) -> None:
    country = random.Random(seed).choice(COUNTRIES)
    base = f"What is the capital of {country}?"
    # Off: nothing is stored and lookups say so.
    assert _post(functions_url, tenant.key, "store", _request(base, response=_answer("x"), input_tokens=20,
                                                               output_tokens=5)).json()["outcome"] == "disabled"
    assert _post(functions_url, tenant.key, "lookup", _request(base)).json()["outcome"] == "disabled"
    _turn_on(dsn, tenant.org_id)
    stored = _post(functions_url, tenant.key, "store", _request(base, response=_answer("The capital."),
                                                                 input_tokens=20, output_tokens=5, task_type="faq"))
    assert stored.status_code == 200 and stored.json()["outcome"] == "stored"

    exact = _post(functions_url, tenant.key, "lookup", _request(f"what is the capital of {country}"))
    assert exact.json()["outcome"] == "exact"
    assert exact.json()["response"]["choices"][0]["message"]["content"] == "The capital."
    paraphrase = _post(functions_url, tenant.key, "lookup", _request(f"Which city is the capital of {country}?"))
    assert paraphrase.json()["outcome"] == "semantic", paraphrase.json()
    assert paraphrase.json()["saved_usd"] > 0
    # Traps: another country, another system prompt, another temperature.
    other = random.Random(seed + 1).choice([c for c in COUNTRIES if c != country])
    entity_trap = _post(functions_url, tenant.key, "lookup", _request(f"What is the capital of {other}?"))
    assert entity_trap.json()["hit"] is False
    changed = _request(base)
    changed["messages"][0]["content"] = "Answer as a pirate."
    assert _post(functions_url, tenant.key, "lookup", changed).json()["hit"] is False
    assert _post(functions_url, tenant.key, "lookup", _request(base, params={"temperature": 1})).json()["hit"] is False

    # A wrong hit reported raises the entry's threshold: the same paraphrase no longer hits.
    body = paraphrase.json()
    fed = _post(functions_url, tenant.key, "feedback", {"entry_id": body["entry_id"], "similarity": body["similarity"]})
    assert fed.status_code == 200 and fed.json()["threshold"] > body["similarity"]
    again = _post(functions_url, tenant.key, "lookup", _request(f"Which city is the capital of {country}?"))
    assert again.json()["hit"] is False

    # Recorded: hits, misses and savings.
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select sum(exact_hits), sum(semantic_hits), sum(misses), sum(saved_usd) "
                           "from public.semantic_cache_stats where org_id = %s", (tenant.org_id,)).fetchone()
    assert row[0] == 1 and row[1] == 1 and row[2] == 4 and row[3] > 0


def test_never_across_organizations_and_shadow_mode(functions_url: str, dsn: str, tenant) -> None:
    from tokentra_cli import admin
    from tokentra_core.db import connect

    _turn_on(dsn, tenant.org_id)
    text = f"Summarize the {uuid.uuid4().hex[:6]} meeting notes from 2026-11-03."
    _post(functions_url, tenant.key, "store", _request(text, response=_answer("ok"), input_tokens=9, output_tokens=3))
    with connect(dsn, autocommit=True) as conn:
        other = admin.create_org(conn, f"test-{uuid.uuid4().hex[:8]}")
        other_key = admin.create_key(conn, other.id).key
    SECRETS_SEEN.append(other_key)
    _turn_on(dsn, str(other.id), store_responses=False)
    assert _post(functions_url, other_key, "lookup", _request(text)).json()["outcome"] == "miss"
    # Shadow mode: the entry is kept without its response, and a hit returns none.
    assert _post(functions_url, other_key, "store", _request(text, response=_answer("secret"), input_tokens=9,
                                                            output_tokens=3)).json()["outcome"] == "shadow"
    shadow = _post(functions_url, other_key, "lookup", _request(text)).json()
    assert shadow["outcome"] == "shadow_exact" and shadow["response"] is None and shadow["hit"] is False
    with psycopg.connect(dsn) as conn:
        kept = conn.execute("select response from public.semantic_cache where org_id = %s", (other.id,)).fetchone()
    assert kept[0] is None


def test_bad_requests_name_the_field(functions_url: str, tenant) -> None:
    assert _post(functions_url, "tt_live_nope", "lookup", _request("hi")).status_code == 401
    missing = _post(functions_url, tenant.key, "lookup", {"provider": "openai", "messages": []})
    assert missing.status_code == 422 and "model" in missing.json()["message"]
    negative = _post(functions_url, tenant.key, "store", _request("hi", response={}, input_tokens=-1, output_tokens=0))
    assert negative.status_code == 422 and "input_tokens" in negative.json()["message"]
    fed = _post(functions_url, tenant.key, "feedback", {"entry_id": str(uuid.uuid4()), "similarity": 0.9})
    assert fed.status_code == 404


def test_costs_cache_shows_what_the_cache_saved_to_readers_of_costs(functions_url: str, dsn: str) -> None:
    from org_fixtures import make_org

    org = make_org(dsn)
    _turn_on(dsn, org.id)
    text = f"What were the {uuid.uuid4().hex[:6]} sales in March 2026?"
    _post(functions_url, org.key, "store", _request(text, response=_answer("A lot."), input_tokens=4000,
                                                    output_tokens=1000))
    for _ in range(3):
        assert _post(functions_url, org.key, "lookup", _request(text)).json()["outcome"] == "exact"
    _post(functions_url, org.key, "lookup", _request(f"{text} And in April?"))
    seen = httpx.get(f"{functions_url}/costs/cache", params={"org_id": org.id}, headers=org.auth("viewer"),
                     timeout=30)
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["lookups"], body["exact_hits"], body["misses"], body["stores"]) == (4, 3, 1, 1)
    assert body["saved_input_tokens"] == 12_000 and body["saved_output_tokens"] == 3_000
    assert body["saved_usd"] > 0 and body["hit_rate"] == 0.75
    outsider = httpx.get(f"{functions_url}/costs/cache", params={"org_id": org.id}, headers=org.auth("outsider"),
                         timeout=30).json()
    assert outsider["lookups"] == 0 and outsider["saved_usd"] == 0
    bad = httpx.get(f"{functions_url}/costs/cache", params={"start_date": "2026-12-02", "end_date": "2026-11-01"},
                    headers=org.auth("viewer"), timeout=30)
    assert bad.status_code == 422 and "end_date" in bad.json()["message"]
