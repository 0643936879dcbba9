"""tokentra.wrap(client, routing=True): real openai/anthropic clients against a local provider server, the
real functions server and database for rules, snapshot, ingest and the savings the usage rows prove."""

from __future__ import annotations

import json
import random
import socket
import uuid

import anthropic
import openai
import pytest
from sdk_fake_providers import PROVIDER_KEY, ProviderServer

import tokentra
from tokentra import _routing_client, _state
from tokentra_core.db import connect

SERVED = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06",
          "claude-haiku-4-5": "claude-haiku-4-5", "claude-sonnet-4-5": "claude-sonnet-4-5"}
FAQ = [{"role": "user", "content": "What is the capital of France?"}]


def add_rule(dsn: str, org: str, priority: int, conditions, action, share: float = 1.0) -> str:
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "insert into public.routing_rules (org_id, name, priority, conditions, action, traffic_share) "
            "values (%s, %s, %s, %s::jsonb, %s::jsonb, %s) returning id",
            (org, f"rule-{priority}", priority, json.dumps(conditions), json.dumps(action), share)).fetchone()
    return str(row["id"])


def rows(dsn: str, org: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("select * from public.usage_records where org_id = %s order by occurred_at, id",
                            (org,)).fetchall()


@pytest.fixture
def routed_sdk(functions_url, tenant):
    """tokentra configured against the real functions; a fresh snapshot source for each test."""
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=60.0)
    _routing_client._reset_after_fork()
    yield tenant
    _state.reset()
    _routing_client._reset_after_fork()


def test_rules_route_calls_and_the_usage_rows_prove_the_savings(routed_sdk, functions_url, dsn):
    tenant = routed_sdk
    route = add_rule(dsn, tenant.org_id, 10, {"feature": "faq"},
                     {"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"})
    assert tokentra.refresh_routing()
    n = random.randint(3, 8)
    with ProviderServer(SERVED) as provider:
        client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0),
                               routing=True)
        with tokentra.tags(feature="faq"):
            for _ in range(n):
                reply = client.chat.completions.create(model="gpt-4o", messages=FAQ)
                assert reply.choices[0].message.content == "Paris."
        with tokentra.tags(feature="other"):
            client.chat.completions.create(model="gpt-4o", messages=FAQ)
        client.chat.completions.create(model="gpt-4o", messages=FAQ, tokentra_routing=False,
                                       tokentra_tags={"feature": "faq"})
        asked = [body["model"] for _, _, body in provider.requests]
        assert all("tokentra_routing" not in body for _, _, body in provider.requests)
    assert asked == ["gpt-4o-mini"] * n + ["gpt-4o", "gpt-4o"]
    assert tokentra.flush(10)
    stored = rows(dsn, tenant.org_id)
    routed = [r for r in stored if r["routing_arm"] == "rule"]
    assert len(routed) == n and len(stored) == n + 2
    assert all(r["routed_from_model"] == "gpt-4o" and str(r["routing_rule_id"]) == route for r in routed)
    with connect(dsn) as conn:
        saved = conn.execute("select * from private.routing_savings(%s)", (tenant.org_id,)).fetchone()
    assert saved["requests"] == n and saved["savings_usd"] > 0
    assert saved["counterfactual_cost_usd"] > 10 * saved["cost_usd"]  # gpt-4o costs about 16x gpt-4o-mini


def test_a_failing_routed_model_falls_back_to_the_asked_one(routed_sdk, dsn):
    tenant = routed_sdk
    add_rule(dsn, tenant.org_id, 1, {}, {"type": "route_to_model", "provider": "openai", "model": "fail-500"})
    assert tokentra.refresh_routing()
    with ProviderServer(SERVED) as provider:
        client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0),
                               routing=True)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=FAQ)
        assert reply.choices[0].message.content == "Paris."
        assert [body["model"] for _, _, body in provider.requests] == ["fail-500", "gpt-4o-mini"]
    assert tokentra.flush(10)
    stored = rows(dsn, tenant.org_id)
    assert sorted((r["status"], r["routed_from_model"]) for r in stored) == [
        ("error", "gpt-4o-mini"), ("success", None)]
    assert all(r["routing_arm"] == "rule" for r in stored)


async def test_async_clients_route_and_blocks_stop_before_the_provider(routed_sdk, dsn):
    tenant = routed_sdk
    add_rule(dsn, tenant.org_id, 5, {"team": "frozen"}, {"type": "block"})
    add_rule(dsn, tenant.org_id, 9, {}, {"type": "route_to_model", "provider": "anthropic",
                                         "model": "claude-haiku-4-5"})
    assert tokentra.refresh_routing()
    with ProviderServer(SERVED) as provider:
        raw = anthropic.AsyncAnthropic(api_key=PROVIDER_KEY, base_url=provider.url, max_retries=0)
        client = tokentra.wrap(raw, routing=True)
        message = await client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=FAQ)
        assert message.model == "claude-haiku-4-5"
        with pytest.raises(tokentra.CallBlocked) as blocked:
            await client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=FAQ,
                                         tokentra_tags={"team": "frozen"})
        assert blocked.value.rule_id
        assert len(provider.requests) == 1
        await raw.close()


def test_a_strategy_picks_a_cheaper_model_of_the_same_provider_under_the_floor(routed_sdk):
    assert tokentra.refresh_routing()
    snapshot = _routing_client.source().snapshot
    with ProviderServer(SERVED) as provider:
        client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0),
                               routing=True, strategy="cheapest", quality_floor=0.7)
        client.chat.completions.create(model="gpt-4o", messages=FAQ)
        chosen = provider.requests[0][2]["model"]
    info = snapshot.find(chosen, "openai")
    asked = snapshot.find("gpt-4o", "openai")
    assert chosen != "gpt-4o" and info.provider == "openai"
    assert info.quality["chat"] >= 0.7 and info.input_mtok <= asked.input_mtok


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_routing_fails_open_when_tokentra_is_unreachable():
    tokentra.configure(api_key="tt_live_" + "u" * 43, url=f"http://127.0.0.1:{free_port()}/functions/v1",
                       flush_interval=60.0)
    _routing_client._reset_after_fork()
    try:
        assert tokentra.refresh_routing(timeout=1) is False
        with ProviderServer(SERVED) as provider:
            client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1",
                                                 max_retries=0), routing=True, strategy="cheapest")
            model = f"gpt-4o-{uuid.uuid4().hex[:6]}"
            client.chat.completions.create(model=model, messages=FAQ)
            assert provider.requests[0][2]["model"] == model
    finally:
        _state.reset()
        _routing_client._reset_after_fork()
