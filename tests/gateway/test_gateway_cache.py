"""The semantic cache in the gateway: an organization that turned it on gets a repeated question answered
from the cache (no provider call, no budget), recorded as a hit with what it saved; an organization that
did not is never looked up."""

from __future__ import annotations

import time
import uuid

from gateway_helpers import one_prompt


def _wait_for_entry(gw, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not gw.sql("select 1 from public.semantic_cache where org_id = %s", gw.org_id):
        assert time.monotonic() < deadline, "the answer was never stored in the cache"
        time.sleep(0.2)


def test_a_repeated_question_is_answered_from_the_cache_and_recorded_with_savings(gw, openai_client,
                                                                                   upstream) -> None:
    gw.sql("insert into public.semantic_cache_settings (org_id, enabled, store_responses) values (%s, true, true)",
           gw.org_id)
    key = gw.key()
    client = openai_client(key, max_retries=0, timeout=120)
    question = [{"role": "user", "content": f"What is the capital of France? Ticket {uuid.uuid4().hex[:6]}"}]
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=question, max_tokens=40)
    assert "x-tokentra-cache" not in first.headers
    _wait_for_entry(gw)
    seen = len(upstream.app.requests)
    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=question, max_tokens=40)
    assert second.headers["x-tokentra-cache"] in ("exact", "semantic")
    assert len(upstream.app.requests) == seen, "a hit never reaches the provider"
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    rows = gw.usage(key, 2)
    hit = next(r for r in rows if r["cache_hit"])
    miss = next(r for r in rows if not r["cache_hit"])
    assert hit["input_tokens"] == 0 and hit["output_tokens"] == 0
    assert float(hit["metadata"]["tokentra"]["cache_saved_usd"]) > 0
    assert abs(float(hit["metadata"]["tokentra"]["cache_saved_usd"]) - float(miss["cost_usd"])) < 1e-6
    # another parameter (max_tokens changes the answer) is another scope: no hit
    third = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=question, max_tokens=41)
    assert "x-tokentra-cache" not in third.headers


def test_no_lookup_where_the_cache_is_off(gw, openai_client) -> None:
    key = gw.key()
    client = openai_client(key, max_retries=0)
    question = one_prompt()
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=question)
        assert "x-tokentra-cache" not in raw.headers
    assert not any(r["cache_hit"] for r in gw.usage(key, 2))
    time.sleep(0.5)  # a miss's answer would be stored right after the response
    assert gw.sql("select 1 from public.semantic_cache where org_id = %s", gw.org_id) == [], \
        "an organization without the cache gets nothing stored"
