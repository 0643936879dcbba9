"""`tokentra.wrap(client, cache=True)` against the real functions server, database and local embedder, with
the real provider clients pointed at a local fake provider."""

from __future__ import annotations

import random
import time
import uuid

import anthropic
import openai
import psycopg
import pytest
from sdk_fake_providers import PROVIDER_KEY, ProviderServer

import tokentra
from tokentra import _state

COUNTRIES = ["Kenya", "Chile", "Norway", "Vietnam", "Morocco", "Ireland", "Peru", "Greece"]


@pytest.fixture
def cached_org(functions_url: str, dsn: str, tenant):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses) "
                     "values (%s, true, true)", (tenant.org_id,))
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=0.2)
    yield tenant
    _state.reset()


def _wait_for_entry(dsn: str, org_id: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            if conn.execute("select count(*) from public.semantic_cache where org_id = %s",
                            (org_id,)).fetchone()[0] >= count:
                return
        time.sleep(0.1)
    raise AssertionError("the answer was never stored in the cache")


def _usage(dsn: str, org_id: str, n: int) -> list[tuple]:
    deadline = time.monotonic() + 20
    rows: list[tuple] = []
    while time.monotonic() < deadline:
        tokentra.flush(timeout=5)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("select cache_hit, input_tokens, cost_usd, metadata -> 'tokentra'"
                                " from public.usage_records where org_id = %s order by occurred_at",
                                (org_id,)).fetchall()
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"expected {n} usage rows, found {len(rows)}")


def test_a_paraphrase_is_answered_from_the_cache_and_recorded(cached_org, dsn: str) -> None:
    country = random.choice(COUNTRIES)
    with ProviderServer() as provider:
        client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0),
                               cache=True)
        question = f"What is the capital of {country}?"
        first = client.chat.completions.create(
            model="gpt-4o-mini", temperature=0, messages=[{"role": "user", "content": question}])
        assert len(provider.requests) == 1
        _wait_for_entry(dsn, cached_org.org_id, 1)
        paraphrase = f"Which city is the capital of {country}?"
        again = client.chat.completions.create(
            model="gpt-4o-mini", temperature=0, messages=[{"role": "user", "content": paraphrase}])
        assert len(provider.requests) == 1, "the provider was called for a cached paraphrase"
        assert isinstance(again, openai.types.chat.ChatCompletion)
        assert again.choices[0].message.content == first.choices[0].message.content
        # A trap (another country) and another temperature go to the provider.
        other = random.choice([c for c in COUNTRIES if c != country])
        client.chat.completions.create(model="gpt-4o-mini", temperature=0,
                                       messages=[{"role": "user", "content": f"What is the capital of {other}?"}])
        client.chat.completions.create(model="gpt-4o-mini", temperature=0.9,
                                       messages=[{"role": "user", "content": f"What is the capital of {country}?"}])
        assert len(provider.requests) == 3
    rows = _usage(dsn, cached_org.org_id, 4)
    hits = [r for r in rows if r[0]]
    assert len(hits) == 1 and hits[0][1] == 0 and (hits[0][2] or 0) == 0
    assert hits[0][3]["cache_saved_usd"] > 0 and uuid.UUID(hits[0][3]["cache_entry_id"])


def test_anthropic_messages_are_cached_too(cached_org, dsn: str) -> None:
    topic = uuid.uuid4().hex[:6]
    with ProviderServer() as provider:
        client = tokentra.wrap(anthropic.Anthropic(api_key=PROVIDER_KEY, base_url=provider.url, max_retries=0),
                               cache=True)
        ask = {"model": "claude-haiku-4-5", "max_tokens": 100, "system": "Be brief.",
               "messages": [{"role": "user", "content": f"Summarize the {topic} meeting notes from 2026-11-03."}]}
        client.messages.create(**ask)
        _wait_for_entry(dsn, cached_org.org_id, 1)
        answer = client.messages.create(**ask)
        assert len(provider.requests) == 1
        assert isinstance(answer, anthropic.types.Message)


def test_the_cache_fails_open_when_tokentra_is_unreachable(functions_url: str, tenant) -> None:
    tokentra.configure(api_key=tenant.key, url="http://127.0.0.1:9/functions/v1")
    try:
        with ProviderServer() as provider:
            client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1",
                                                 max_retries=0), cache=True)
            for _ in range(2):
                reply = client.chat.completions.create(model="gpt-4o-mini",
                                                       messages=[{"role": "user", "content": "What is 2 + 2?"}])
                assert reply.choices[0].message.content
            assert len(provider.requests) == 2
    finally:
        _state.reset()
