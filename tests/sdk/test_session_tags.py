"""The SDK's session_id and trace_id tags reach their columns: cost per session and per trace through the real
openai client, wrapped, against the real ingest function and database; calls without them keep none."""

from __future__ import annotations

import openai
from sdk_fake_providers import PROVIDER_KEY, ProviderServer

import tokentra
from tokentra import _state
from tokentra_core.db import connect


def test_session_and_trace_tags_group_cost(functions_url, tenant, dsn) -> None:
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=60.0)
    try:
        with ProviderServer({"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}) as provider:
            oa = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0))
            ask = [{"role": "user", "content": "hi"}]
            with tokentra.tags(session_id="conv-1"):
                with tokentra.tags(trace_id="turn-1"):
                    oa.chat.completions.create(model="gpt-4o-mini", messages=ask)
                    oa.chat.completions.create(model="gpt-4o-mini", messages=ask)
                with tokentra.tags(trace_id="turn-2"):
                    oa.chat.completions.create(model="gpt-4o-mini", messages=ask)
            oa.chat.completions.create(model="gpt-4o-mini", messages=ask)
        assert tokentra.flush(10)
    finally:
        _state.reset()
    with connect(dsn) as conn:
        rows = conn.execute("select trace_id, session_id, canonical_model from public.usage_records "
                            "where org_id = %s", (tenant.org_id,)).fetchall()
    assert sorted((r["trace_id"] or "", r["session_id"] or "") for r in rows) == [
        ("", ""), ("turn-1", "conv-1"), ("turn-1", "conv-1"), ("turn-2", "conv-1")]
    assert {r["canonical_model"] for r in rows} == {"gpt-4o-mini"}
