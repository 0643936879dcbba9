"""SDK budget enforcement against the real functions and database: strict reservations committed by the
reported event, eventual checks cached briefly, tokentra.BudgetExceeded raised before the provider is
called, and TokenTRA being unreachable failing open or closed as configured."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import openai
import pytest
from sdk_fake_providers import PROVIDER_KEY, ProviderServer

import tokentra
from tokentra import _state
from tokentra.budgets import Enforcement
from tokentra_core.db import connect

MESSAGES = [{"role": "user", "content": "Say hello"}]


def hard_budget(dsn: str, org_id: str, amount: str) -> str:
    with connect(dsn, autocommit=True) as conn:
        return str(
            conn.execute(
                "insert into public.budgets (org_id, name, amount, period, hard_limit) "
                "values (%s, 'hard', %s, 'daily', true) returning id",
                (org_id, amount),
            ).fetchone()["id"]
        )


def spend(dsn: str, org_id: str, cost: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, "
            "priced) values (%s, %s, %s, 'openai', 'gpt-4o-mini', %s, true)",
            (org_id, datetime.now(UTC), str(uuid.uuid4()), Decimal(cost)),
        )


@pytest.fixture
def provider():
    with ProviderServer({"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}) as server:
        yield server


@pytest.fixture
def configured(functions_url, tenant):
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=60.0)
    yield tenant
    _state.reset()


@pytest.fixture
def client():
    """client(provider, **wrap_options): a wrapped openai.OpenAI, closed after the test."""
    made = []

    def make(provider, **wrap_options):
        raw = openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0)
        made.append(raw)
        return tokentra.wrap(raw, **wrap_options)

    yield make
    for raw in made:
        raw.close()


def test_strict_reserves_before_the_call_and_the_event_commits_it(configured, provider, dsn, client):
    budget = hard_budget(dsn, configured.org_id, "0.05")
    oa = client(provider, enforce_budgets="strict")
    oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=200)
    assert tokentra.flush(10)
    with connect(dsn) as conn:
        (res,) = conn.execute(
            "select * from private.budget_reservations where org_id = %s", (configured.org_id,)
        ).fetchall()
        holds = conn.execute(
            "select count(*) as n from private.budget_holds where budget_id = %s", (budget,)
        ).fetchone()
    assert res["status"] == "committed" and res["actual_cost_usd"] > 0 and holds["n"] == 0
    assert res["amount_usd"] >= res["actual_cost_usd"]

    spend(dsn, configured.org_id, "0.06")  # the budget is now used up
    calls_before = len(provider.requests)
    with pytest.raises(tokentra.BudgetExceeded) as exc:
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=200)
    assert exc.value.budget_id == budget and exc.value.mode == "strict" and not exc.value.unreachable
    assert len(provider.requests) == calls_before  # the provider was never called


def test_eventual_caches_the_answer_briefly(configured, provider, dsn, monkeypatch, client):
    budget = hard_budget(dsn, configured.org_id, "1.00")
    asked = []
    original = Enforcement._post_sync
    monkeypatch.setattr(
        Enforcement, "_post_sync", lambda self, path, body: asked.append(path) or original(self, path, body)
    )
    oa = client(provider, enforce_budgets="eventual", budget_cache_seconds=30)
    for _ in range(5):
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert asked == ["/budget/check"]  # one round trip for five calls

    spend(dsn, configured.org_id, "1.50")
    fresh = client(provider, enforce_budgets="eventual", budget_cache_seconds=0)
    with pytest.raises(tokentra.BudgetExceeded) as exc:
        fresh.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert exc.value.budget_id == budget and exc.value.mode == "eventual"


async def test_async_clients_enforce_too(configured, provider, dsn):
    hard_budget(dsn, configured.org_id, "0.01")
    spend(dsn, configured.org_id, "0.02")
    raw = openai.AsyncOpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0)
    oa = tokentra.wrap(raw, enforce_budgets="strict")
    with pytest.raises(tokentra.BudgetExceeded):
        await oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10)
    await raw.close()
    assert provider.requests == []


@pytest.mark.parametrize("mode", ["strict", "eventual"])
def test_unreachable_tokentra_fails_open_or_closed_as_configured(provider, mode, client):
    tokentra.configure(
        api_key="tt_live_" + "u" * 43, url="http://127.0.0.1:9/functions/v1", flush_interval=60.0
    )
    try:
        open_client = client(provider, enforce_budgets=mode)  # fail_open=True is the default
        open_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(provider.requests) == 1
        closed = client(provider, enforce_budgets=mode, fail_open=False)
        with pytest.raises(tokentra.BudgetExceeded) as exc:
            closed.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert exc.value.unreachable and len(provider.requests) == 1
    finally:
        _state.reset()


def test_without_enforcement_nothing_changes(configured, provider, dsn, client):
    hard_budget(dsn, configured.org_id, "0.01")
    spend(dsn, configured.org_id, "0.02")
    client(provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(provider.requests) == 1
    with pytest.raises(ValueError):
        client(provider, enforce_budgets="sometimes")
