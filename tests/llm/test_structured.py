"""LLM.structured against the scripted servers with the real openai/anthropic clients and the real ingest."""

from __future__ import annotations

import json

import pytest
from llm_fixtures import AGREE, PROMPT, SYSTEM, Position, usage_rows

from tokentra_core.llm import LLM, LLMUnavailable, StructuredOutputFailed
from tokentra_dev.testing.llm_servers import Answer


@pytest.mark.parametrize("task, provider", [("consensus.analyst", "openai"), ("consensus.skeptic", "anthropic")])
async def test_an_agreeing_answer_is_parsed_in_the_providers_native_structured_shape(llm, servers, tenant, task,
                                                                                       provider):
    answer, call = await llm.structured(task, Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    assert answer == Position(**AGREE)
    assert (call.task, call.provider, call.ok, call.fallback_used, call.error) == (task, provider, True, False, None)
    assert call.input_tokens > 0 and call.output_tokens > 0 and call.cost_usd > 0
    [seen] = servers.seen
    assert (seen.provider, seen.system, seen.prompt, seen.schema_name) == (provider, SYSTEM, PROMPT, "Position")
    if provider == "openai":
        fmt = seen.body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"]["additionalProperties"] is False
        assert seen.body["messages"][0] == {"role": "system", "content": SYSTEM}  # static prefix first: cacheable
    else:
        assert seen.body["tool_choice"] == {"type": "tool", "name": "Position"}
        [tool] = seen.body["tools"]
        assert set(tool["input_schema"]["required"]) >= {"verdict", "confidence", "key_points"}
        assert seen.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert llm.calls == [call]


async def test_a_failing_provider_falls_back_to_the_other_and_both_calls_are_recorded(llm, servers, tenant, dsn):
    servers.script = lambda seen: Answer.error(529) if seen.provider == "anthropic" else Answer.json(AGREE)
    answer, call = await llm.structured("consensus.skeptic", Position, org_id=tenant.org_id, system=SYSTEM,
                                        prompt=PROMPT)
    assert answer.verdict == "accept"
    assert (call.provider, call.model, call.fallback_used, call.ok) == ("openai", "gpt-4.1-mini", True, True)
    assert [s.provider for s in servers.seen] == ["anthropic", "openai"]  # no client retry delays the fallback
    failed = llm.calls[0]
    assert (failed.provider, failed.ok, failed.input_tokens, failed.cost_usd) == ("anthropic", False, 0, 0.0)
    assert failed.error.startswith("http_529")
    rows = usage_rows(dsn, tenant.org_id)
    assert [(r["provider"], r["status"], r["routed_from_model"]) for r in rows] == [
        ("anthropic", "error", None), ("openai", "success", "claude-haiku-4-5")]


async def test_a_timeout_falls_back(make_settings, dsn, servers, tenant):
    servers.script = lambda seen: (Answer.delay(5, Answer.json(AGREE)) if seen.provider == "openai"
                                   else Answer.json({**AGREE, "verdict": "modify"}))
    llm = LLM(make_settings(llm_timeout_seconds=0.5), dsn)
    try:
        answer, call = await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM,
                                            prompt=PROMPT)
    finally:
        await llm.aclose()
    assert (answer.verdict, call.provider, call.fallback_used) == ("modify", "anthropic", True)
    assert llm.calls[0].error.startswith("timeout")
    assert [r["status"] for r in usage_rows(dsn, tenant.org_id)] == ["timeout", "success"]


@pytest.mark.parametrize("task", ["consensus.analyst", "consensus.skeptic"])
@pytest.mark.parametrize("bad", ["this is not json {", '{"verdict": "maybe", "confidence": 3}'])
async def test_a_malformed_answer_is_repaired_once_with_the_validation_error(llm, servers, tenant, task, bad):
    answers = iter([Answer.malformed(bad), Answer.json(AGREE)])
    servers.script = lambda seen: next(answers)
    answer, call = await llm.structured(task, Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    assert answer == Position(**AGREE)
    first, second = servers.seen
    assert first.provider == second.provider  # the same model is asked to repair its answer
    assert "did not match the required Position schema" in second.prompt
    if bad.startswith("{"):
        assert "verdict" in second.prompt and "confidence" in second.prompt  # the fields and reasons go back
    else:
        assert "not valid JSON" in second.prompt
    assert [c.ok for c in llm.calls] == [False, True] and llm.calls[0].error.startswith("malformed")


async def test_a_model_malformed_twice_hands_over_to_the_fallback(llm, servers, tenant, dsn):
    # the primary (OpenAI for the analyst) cannot keep to the schema; the fallback answers
    servers.script = lambda seen: (Answer.malformed(json.dumps({"verdict": "maybe"})) if seen.provider == "openai"
                                   else Answer.json(AGREE))
    answer, call = await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM,
                                        prompt=PROMPT)
    assert answer == Position(**AGREE)
    assert (call.provider, call.model, call.fallback_used, call.ok) == ("anthropic", "claude-haiku-4-5", True, True)
    assert [s.provider for s in servers.seen] == ["openai", "openai", "anthropic"]
    # the fallback starts a fresh conversation: no repair request of the other model's answer
    assert "did not match" not in servers.seen[2].prompt
    assert [c.ok for c in llm.calls] == [False, False, True]
    rows = usage_rows(dsn, tenant.org_id)
    assert [(r["provider"], r["routed_from_model"]) for r in rows] == [
        ("openai", None), ("openai", None), ("anthropic", "gpt-4.1-mini")]


async def test_malformed_twice_on_every_model_fails_and_every_call_counts(llm, servers, tenant, dsn):
    servers.script = lambda seen: Answer.malformed(json.dumps({"verdict": "maybe"}))
    with pytest.raises(StructuredOutputFailed) as failure:
        await llm.structured("consensus.analyst", Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    assert not isinstance(failure.value, LLMUnavailable)
    assert "openai:gpt-4.1-mini" in str(failure.value) and "anthropic:claude-haiku-4-5" in str(failure.value)
    assert len(failure.value.calls) == 4 and not any(c.ok for c in failure.value.calls)
    assert [s.provider for s in servers.seen] == ["openai", "openai", "anthropic", "anthropic"]
    rows = usage_rows(dsn, tenant.org_id)
    assert [r["request_id"] for r in rows] == [c.request_id for c in failure.value.calls]
    assert all(r["status"] == "success" and r["output_tokens"] > 0 for r in rows)  # billed, though unusable


async def test_every_model_failing_raises_unavailable_with_the_calls(llm, servers, tenant):
    servers.script = lambda seen: Answer.error(500)
    with pytest.raises(LLMUnavailable) as failure:
        await llm.structured("explain.anomaly", Position, org_id=tenant.org_id, system=SYSTEM, prompt=PROMPT)
    assert [c.provider for c in failure.value.calls] == ["anthropic", "openai"]
    assert isinstance(failure.value, StructuredOutputFailed)


async def test_escalation_uses_the_tasks_escalation_model(llm, servers, tenant):
    _, call = await llm.structured("consensus.synthesizer", Position, org_id=tenant.org_id, system=SYSTEM,
                                   prompt=PROMPT, escalate=True)
    assert (call.provider, call.model, call.fallback_used) == ("openai", "gpt-4.1", False)


async def test_a_task_whose_provider_has_no_key_runs_on_its_fallback(make_settings, dsn, servers, tenant):
    llm = LLM(make_settings(ANTHROPIC_API_KEY=""), dsn)
    try:
        _, call = await llm.structured("consensus.skeptic", Position, org_id=tenant.org_id, system=SYSTEM,
                                       prompt=PROMPT)
    finally:
        await llm.aclose()
    assert (call.provider, call.fallback_used) == ("openai", True)
    assert [s.provider for s in servers.seen] == ["openai"]


async def test_bad_arguments_are_refused_by_name(llm, servers):
    with pytest.raises(ValueError, match="org_id: 'acme' is not a UUID"):
        await llm.structured("consensus.analyst", Position, org_id="acme", system=SYSTEM, prompt=PROMPT)
    assert servers.seen == []
