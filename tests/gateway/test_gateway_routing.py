"""Routing in the gateway: the organization's rules (tokentra.routing, the module every function shares)
move a call to another model, record the decision on its usage row, block calls, and never route to a
model the key may not call."""

from __future__ import annotations

import json

import openai
import pytest
from gateway_helpers import one_prompt


def _rule(gw, name: str, conditions: dict, action: dict, priority: int = 10) -> str:
    return str(gw.sql("insert into public.routing_rules (org_id, name, priority, conditions, action) "
                      "values (%s, %s, %s, %s, %s) returning id", gw.org_id, name, priority, json.dumps(conditions),
                      json.dumps(action))[0]["id"])


def test_rules_route_block_and_respect_the_key(gw, openai_client) -> None:
    routed_rule = _rule(gw, "faq to mini", {"feature": "faq"}, {"type": "route_to_model", "model": "gpt-4o-mini"})
    _rule(gw, "no banned feature", {"feature": "banned"}, {"type": "block"}, priority=5)
    key = gw.key()
    client = openai_client(key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=one_prompt(), extra_headers={"x-tokentra-feature": "faq"})
    assert raw.headers["x-tokentra-model"] == "gpt-4o-mini"
    assert raw.parse().model == "gpt-4o-mini-2024-07-18"
    # another feature is not routed
    other = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=one_prompt(), extra_headers={"x-tokentra-feature": "search"})
    assert other.headers["x-tokentra-model"] == "gpt-4o"
    with pytest.raises(openai.PermissionDeniedError) as blocked:
        client.chat.completions.create(model="gpt-4o", messages=one_prompt(),
                                       extra_headers={"x-tokentra-feature": "banned"})
    assert blocked.value.code == "blocked_by_rule"
    rows = gw.usage(key, 2)
    routed = next(r for r in rows if r["feature"] == "faq")
    assert (routed["routed_from_model"], str(routed["routing_rule_id"]), routed["routing_arm"]) == (
        "gpt-4o", routed_rule, "rule")
    plain = next(r for r in rows if r["feature"] == "search")
    assert plain["routed_from_model"] is None and plain["routing_rule_id"] is None
    # a key that may call only gpt-4o keeps it: routing never widens what a key may call
    strict = gw.key(models=["gpt-4o"])
    kept = openai_client(strict, max_retries=0).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=one_prompt(), extra_headers={"x-tokentra-feature": "faq"})
    assert kept.headers["x-tokentra-model"] == "gpt-4o"


def test_a_bad_strategy_header_is_named(gw, openai_client) -> None:
    key = gw.key()
    with pytest.raises(openai.BadRequestError) as bad:
        openai_client(key, max_retries=0).chat.completions.create(
            model="gpt-4o", messages=one_prompt(), extra_headers={"x-tokentra-strategy": "cheapest-ever"})
    assert "strategy" in bad.value.message
