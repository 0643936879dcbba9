"""The SDK end to end: real openai/anthropic clients, wrapped, against the real ingest function and database."""

from __future__ import annotations

import json

import anthropic
import openai
from sdk_fake_providers import PROVIDER_KEY, ProviderServer

import tokentra
from secret_registry import SECRETS_SEEN
from tokentra import _state
from tokentra_core.db import connect

PROMPT = "Summarise the quarterly numbers for ACME-PRIVATE-PROMPT-7731 please"


def test_wrapped_calls_arrive_priced_attributed_and_without_prompt_text(functions_url, tenant, dsn) -> None:
    SECRETS_SEEN.extend([PROMPT, PROVIDER_KEY])
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=60.0)
    try:
        # Real snapshot names, as the providers answer them, so the rows price.
        served = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "claude-sonnet-4-20250514": "claude-sonnet-4-20250514"}
        with ProviderServer(served) as provider:
            oa = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1", max_retries=0))
            an = tokentra.wrap(anthropic.Anthropic(api_key=PROVIDER_KEY, base_url=provider.url, max_retries=0))
            with tokentra.tags(feature="reports", team="finance", user_id="u-42"):
                oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
                for _ in oa.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                    messages=[{"role": "user", "content": PROMPT}]):
                    pass
                an.messages.create(model="claude-sonnet-4-20250514", max_tokens=100,
                                   messages=[{"role": "user", "content": PROMPT}])
        assert tokentra.flush(10)
        stats = tokentra.stats()
    finally:
        _state.reset()
    assert stats["accepted"] == 3 and stats["rejected"] == 0, stats

    with connect(dsn) as conn:
        rows = conn.execute("select * from public.usage_records where org_id = %s order by provider, is_streaming",
                            (tenant.org_id,)).fetchall()
    assert [(r["provider"], r["is_streaming"]) for r in rows] == [
        ("anthropic", False), ("openai", False), ("openai", True)]
    for row in rows:
        assert (row["feature"], row["team"], row["end_user_id"]) == ("reports", "finance", "u-42")
        assert row["priced"] and row["cost_usd"] > 0, row["model"]
        assert row["input_tokens"] >= row["cached_tokens"] + row["cache_write_tokens"]
        assert len(row["prompt_hash"]) == 64
    # Anthropic's input_tokens excludes cache reads and writes; stored input includes them.
    anth = rows[0]
    assert anth["input_tokens"] == (anth["raw_usage"]["input_tokens"] + anth["raw_usage"]["cache_read_input_tokens"]
                                    + anth["raw_usage"]["cache_creation_input_tokens"])
    stored = json.dumps([{k: str(v) for k, v in r.items()} for r in rows])
    assert PROMPT not in stored and "ACME-PRIVATE" not in stored and PROVIDER_KEY not in stored
