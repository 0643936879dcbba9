"""Every call is usage of the internal organization, through the ingest function; the AI cap bounds it."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from llm_fixtures import AGREE, PROMPT, SYSTEM, Position, set_cap, usage_rows

from org_fixtures import api, make_org
from tokentra_core.db import connect
from tokentra_core.llm import LLM, AICapReached, LLMOff, llm_status
from tokentra_core.settings import Settings
from tokentra_dev.testing.llm_servers import Answer

LONG_PROMPT = PROMPT * 150


async def test_usage_rows_match_the_calls_made(llm, servers, tenant, dsn):
    answers = {"anthropic": iter([Answer.error(503)]), "openai": iter([Answer.malformed("{"), Answer.json(AGREE)])}
    servers.script = lambda seen: next(answers[seen.provider], Answer.json(AGREE))
    await llm.structured("consensus.skeptic", Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    # Three roles at once, as a consensus round asks them.
    await asyncio.gather(*(llm.structured(task, Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
                           for task in ("consensus.analyst", "consensus.skeptic", "consensus.advocate")))
    rows = {r["request_id"]: r for r in usage_rows(dsn, tenant.org_id)}
    assert len(llm.calls) == 6 and set(rows) == {c.request_id for c in llm.calls}
    with connect(dsn) as conn:
        internal = conn.execute("select private.internal_org_id() as id").fetchone()["id"]
        assert conn.execute("select count(*) as n from public.usage_records where org_id = %s"
                            " and request_id = any(%s)", (tenant.org_id, list(rows))).fetchone()["n"] == 0
    for call in llm.calls:
        row = rows[call.request_id]
        assert (row["provider"], row["model"], row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (
            call.provider, call.model, call.input_tokens, call.output_tokens, call.cached_tokens)
        # Our genai-prices cost and the SQL price table's agree to the last fraction of a cent.
        assert row["cost_usd"] == pytest.approx(Decimal(str(call.cost_usd)), abs=Decimal("1e-9"))
        assert (row["feature"], row["end_user_id"]) == (call.task, tenant.org_id)
        assert row["metadata"]["fallback_used"] == call.fallback_used
        assert row["prompt_hash"] and PROMPT not in str(row)  # the prompt itself is never stored
    assert internal is not None
    with connect(dsn) as conn:
        spend = conn.execute("select * from public.ai_spend(%s)", (tenant.org_id,)).fetchone()
    assert spend["calls"] == 6
    assert spend["spend_usd"] == pytest.approx(Decimal(str(sum(c.cost_usd for c in llm.calls))), abs=Decimal("1e-9"))


async def test_the_ai_cap_stops_further_calls(llm, servers, tenant, dsn):
    # Caps are whole cents. Long prompts (~$0.0015 a call) leave room for a few calls: a call is refused
    # once its worst case (~$0.004: the prompt twice, for a repair, and the whole output allowance) could pass.
    set_cap(dsn, tenant.org_id, "0.01")
    made = 0
    with pytest.raises(AICapReached, match="cap of \\$0.01"):
        for _ in range(20):
            await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM,
                                 prompt=LONG_PROMPT)
            made += 1
    assert made >= 1 and len(servers.seen) == made  # the refused call never reached the provider
    rows = usage_rows(dsn, tenant.org_id)
    assert len(rows) == made and sum(r["cost_usd"] for r in rows) <= Decimal("0.01")


async def test_a_zero_cap_allows_no_call_and_other_orgs_are_not_affected(llm, servers, tenant, dsn):
    set_cap(dsn, tenant.org_id, 0)
    with pytest.raises(AICapReached):
        await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    assert servers.seen == []
    other = make_org(dsn)
    _, call = await llm.structured("consensus.analyst", Position, org_id=other.id, system=SYSTEM, prompt=PROMPT)
    assert call.ok


async def test_calls_not_yet_recorded_count_against_the_cap(make_settings, servers, tenant, dsn):
    # Ingest unreachable: the calls are kept and still counted, so the cap holds while the database lags.
    llm = LLM(make_settings(llm_ingest_url="http://127.0.0.1:9/functions/v1/ingest"), dsn)
    set_cap(dsn, tenant.org_id, "0.01")
    try:
        with pytest.raises(AICapReached):
            for _ in range(20):
                await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM,
                                     prompt=LONG_PROMPT)
    finally:
        await llm.aclose()
    assert usage_rows(dsn, tenant.org_id) == []
    assert 1 <= len(servers.seen) == len(llm.calls) and sum(c.cost_usd for c in llm.calls) <= 0.01


async def test_no_key_means_llm_off(dsn, tenant):
    settings = Settings(OPENAI_API_KEY="", ANTHROPIC_API_KEY=None)
    status = llm_status(settings)
    assert status["enabled"] is False and status["providers"] == []
    assert "OPENAI_API_KEY" in status["reason"] and "ANTHROPIC_API_KEY" in status["reason"]
    llm = LLM(settings, dsn)
    try:
        assert llm.enabled is False
        with pytest.raises(LLMOff, match="set OPENAI_API_KEY or ANTHROPIC_API_KEY"):
            await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    finally:
        await llm.aclose()
    assert llm.calls == []


async def test_logs_carry_neither_keys_nor_prompts(llm, servers, tenant, caplog):
    caplog.set_level(logging.INFO)
    servers.script = lambda seen: Answer.error(500) if seen.provider == "openai" else Answer.json(AGREE)
    await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    assert "llm call task=consensus.analyst" in caplog.text
    env = servers.inner.env()
    for secret in (env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"], PROMPT, SYSTEM.strip()):
        assert secret not in caplog.text


def test_the_status_endpoint_reports_off_and_the_orgs_ai_spend(functions_url, dsn):
    org = make_org(dsn)
    set_cap(dsn, org.id, "12.50")
    body = api(functions_url, "GET", f"/llm/status?org_id={org.id}", org.auth("member")).json()["data"]
    assert body["enabled"] is False and "OPENAI_API_KEY" in body["reason"]
    spend = body["ai_spend"]
    assert (spend["org_id"], Decimal(str(spend["cap_usd"])), spend["calls"]) == (org.id, Decimal("12.50"), 0)
    assert api(functions_url, "GET", "/llm/status", org.auth("viewer")).json()["data"]["ai_spend"] is None
    outsider = api(functions_url, "GET", f"/llm/status?org_id={org.id}", org.auth("outsider"))
    assert outsider.status_code == 404 and outsider.json()["message"].startswith("org_id:")
    bad = api(functions_url, "GET", "/llm/status?org_id=acme", org.auth("member"))
    assert bad.status_code == 422 and bad.json()["message"].startswith("org_id:")
    assert api(functions_url, "GET", "/llm/status", {}).status_code == 401
