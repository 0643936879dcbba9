"""The provider embedder: OpenAI's embedding API through the LLM layer (the real client against the scripted
server), recorded as the internal organization's usage on behalf of the customer, capped like every call,
and usable by the cache at 1,536 dimensions."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import psycopg
import pytest

from tokentra_core.cache import lookup, make_embedder, store
from tokentra_core.db import connect
from tokentra_core.llm import LLM, AICapReached


def _rows(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("select model, endpoint, input_tokens, cost_usd, feature, status from public.usage_records"
                            " where org_id = private.internal_org_id() and end_user_id = %s", (org_id,)).fetchall()


async def test_embeddings_are_recorded_as_our_own_usage(llm_settings, dsn: str, tenant) -> None:
    llm = LLM(llm_settings(), dsn)
    try:
        embedder = make_embedder("openai:text-embedding-3-small", llm)
        texts = [f"What is the capital of {c}?" for c in random.sample(["France", "Peru", "Chile", "Japan"], 3)]
        vectors = await embedder.embed(texts, org_id=tenant.org_id)
    finally:
        await llm.aclose()
    assert [len(v) for v in vectors] == [1536] * 3
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-6 for v in vectors)
    (row,) = _rows(dsn, tenant.org_id)
    assert (row["model"], row["endpoint"], row["feature"], row["status"]) == (
        "text-embedding-3-small", "embeddings", "cache.embed", "success")
    assert row["input_tokens"] > 0 and row["cost_usd"] > 0


async def test_the_ai_cap_refuses_embeddings(llm_settings, dsn: str, tenant) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update public.billing_profiles set ai_monthly_cap_usd = 0 where org_id = %s", (tenant.org_id,))
    llm = LLM(llm_settings(), dsn)
    try:
        with pytest.raises(AICapReached):
            await make_embedder("openai:text-embedding-3-small", llm).embed(["hi there"], org_id=tenant.org_id)
    finally:
        await llm.aclose()
    assert _rows(dsn, tenant.org_id) == []


async def test_the_cache_works_at_1536_dimensions(llm_settings, dsn: str, tenant) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses) "
                     "values (%s, true, true)", (tenant.org_id,))
    llm = LLM(llm_settings(), dsn)
    try:
        embedder = make_embedder("openai:text-embedding-3-small", llm, threshold=0.8)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            asked = [{"role": "user", "content": "Explain the difference between TCP and UDP in networking"}]
            stored = await store(conn, embedder, org_id=tenant.org_id, provider="openai", model="gpt-4o-mini",
                                 messages=asked, response={"answer": "..."}, input_tokens=12, output_tokens=80)
            assert stored.outcome == "stored"
            again = [{"role": "user", "content": "Please explain the difference between TCP and UDP in networking"}]
            found = await lookup(conn, embedder, org_id=tenant.org_id, model="gpt-4o-mini", messages=again)
            assert found.outcome == "semantic" and found.response == {"answer": "..."}
            assert found.saved_usd > Decimal(0)
            cur = await conn.execute("select embedding_dims, embedding_model from public.semantic_cache "
                                     "where org_id = %s", (tenant.org_id,))
            assert await cur.fetchone() == (1536, "openai:text-embedding-3-small")
    finally:
        await llm.aclose()
    assert len(_rows(dsn, tenant.org_id)) == 2  # one embedding call for the store, one for the lookup
