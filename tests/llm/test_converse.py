"""LLM.converse, the tool conversation, against the scripted servers with the real clients and ingest."""

from __future__ import annotations

import json

import pytest
from llm_fixtures import set_cap, usage_rows
from pydantic import BaseModel, ConfigDict

from tokentra_core.llm import LLM, AICapReached, LLMOff, ToolOutput, ToolSpec
from tokentra_dev.testing.llm_servers import Answer

SYSTEM = "You answer questions about a list of numbers with the tools you have."


class Lookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


TOOLS = [ToolSpec("lookup", "The number stored under a key.", Lookup)]
STORE = {"alpha": 41, "beta": 7}


async def run(name: str, args: BaseModel) -> ToolOutput:
    assert name == "lookup" and isinstance(args, Lookup)
    found = STORE.get(args.key)
    return ToolOutput(json.dumps({"key": args.key, "value": found}), found, found is None)


def results_in(seen) -> list[str]:
    return [m["content"] for m in seen.body["messages"] if m.get("role") == "tool"]


async def test_tool_calls_run_then_the_answer_is_returned_with_every_call_recorded(llm, servers, tenant, dsn):
    def script(seen):
        if not results_in(seen):
            return Answer.tool_calls(("lookup", {"key": "alpha"}), ("lookup", {"key": "gamma"}))
        return Answer.tool_calls(("answer", {"text": "alpha is 41"}))

    servers.script = script
    talk = await llm.converse("tests.converse", Reply, org_id=tenant.org_id, system=SYSTEM, prompt="What is alpha?",
                              tools=TOOLS, run=run)
    assert talk.answer == Reply(text="alpha is 41") and talk.stop_reason is None
    assert [(r.name, r.args, r.output.data) for r in talk.runs] == [
        ("lookup", Lookup(key="alpha"), 41), ("lookup", Lookup(key="gamma"), None)]
    # both results went back by id, the failed one marked as an error
    assert results_in(servers.seen[1]) == ['{"key": "alpha", "value": 41}', 'ERROR: {"key": "gamma", "value": null}']
    assert servers.seen[0].tools == ["lookup", "answer"]
    rows = usage_rows(dsn, tenant.org_id)
    assert [r["request_id"] for r in rows] == [c.request_id for c in talk.calls] and len(rows) == 2
    assert all(r["feature"] == "tests.converse" for r in rows)


async def test_an_answer_beside_a_malformed_call_is_not_taken(llm, servers, tenant):
    def script(seen):
        if not results_in(seen):
            return Answer.tool_calls(("lookup", {"key": "alpha", "extra": 1}), ("answer", {"text": "guess"}))
        return Answer.tool_calls(("answer", {"text": "fixed"}))

    servers.script = script
    talk = await llm.converse("tests.converse", Reply, org_id=tenant.org_id, system=SYSTEM, prompt="?",
                              tools=TOOLS, run=run)
    assert talk.answer == Reply(text="fixed") and talk.runs == []
    sent = results_in(servers.seen[1])
    assert "do not match its schema: extra" in sent[0] and "fix the other calls" in sent[1]
    assert [c.ok for c in talk.calls] == [False, True] and talk.calls[0].error.startswith("malformed")


async def test_the_review_refuses_an_answer_once_then_the_conversation_ends(llm, servers, tenant):
    servers.script = lambda seen: Answer.tool_calls(("answer", {"text": "it is 99"}))
    talk = await llm.converse("tests.converse", Reply, org_id=tenant.org_id, system=SYSTEM, prompt="?", tools=TOOLS,
                              run=run, review=lambda answer, runs: "99 is not a looked-up value")
    assert (talk.answer, talk.stop_reason, len(talk.calls)) == (None, "rejected", 2)
    assert [r["problem"] for r in talk.rejected] == ["99 is not a looked-up value"] * 2
    assert "This answer was not accepted: 99 is not a looked-up value" in results_in(servers.seen[1])[0]


async def test_refusals_before_any_request(make_settings, llm, servers, tenant, dsn):
    with pytest.raises(ValueError, match="reserved"):
        await llm.converse("tests.converse", Reply, org_id=tenant.org_id, system=SYSTEM, prompt="?",
                           tools=[ToolSpec("answer", "x", Lookup)], run=run)
    off = LLM(make_settings(OPENAI_API_KEY="", ANTHROPIC_API_KEY=""), dsn)
    try:
        with pytest.raises(LLMOff):
            await off.converse("tests.converse", Reply, org_id=tenant.org_id, system=SYSTEM, prompt="?",
                               tools=TOOLS, run=run)
    finally:
        await off.aclose()
    set_cap(dsn, tenant.org_id, "0")
    with pytest.raises(AICapReached):
        await llm.converse("tests.converse", Reply, org_id=tenant.org_id, system=SYSTEM, prompt="?", tools=TOOLS,
                           run=run)
    assert servers.seen == []
