"""The SDK's client-side signals (requested format, JSON overhead of the answer, shared prompt prefix)
and quality feedback: measured from real clients' calls, sent as numbers and hashes only."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pytest
from sdk_fake_providers import JSON_ANSWER, PROVIDER_KEY, ProviderServer
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra
from secret_registry import SECRETS_SEEN
from tokentra import _state
from tokentra._prompt import extract_texts, hash_text
from tokentra._signals import output_overhead, requested_format
from tokentra_core.db import connect

COMPACT = '{"city":"Paris","country":"France"}'
DOC = "ACME-PRIVATE-DOC-4411 " + "The quarterly report says revenue grew. " * 20
CONVERSATION = [
    {"role": "system", "content": "Answer from the document."},
    {"role": "user", "content": DOC},
    {"role": "assistant", "content": "I have read it."},
    {"role": "user", "content": "Where is the company based? Answer in JSON."},
]


def test_overhead_is_the_share_of_characters_outside_the_compact_json() -> None:
    assert output_overhead(COMPACT) == 0
    pretty = json.dumps(json.loads(COMPACT), indent=4)
    assert output_overhead(pretty) == round(1 - len(COMPACT) / len(pretty), 4)
    assert output_overhead(JSON_ANSWER) == round(1 - len(COMPACT) / len(JSON_ANSWER), 4)
    # No JSON object or array: nothing to measure.
    for text in ("Paris.", "42", '"Paris"', "See [1] and {this}.", "", None):
        assert output_overhead(text) is None


def test_requested_format_reads_each_apis_parameter() -> None:
    assert requested_format({"type": "json_object"}) == "json_object"
    assert requested_format({"format": {"type": "json_schema", "name": "x", "schema": {}}}) == "json_schema"
    assert requested_format({"verbosity": "low"}) is None
    assert requested_format(dict) == "json_schema"  # parse(response_format=SomeModel)
    assert requested_format(None) is None and requested_format({"type": "yaml"}) is None


def test_prefix_is_everything_before_the_last_user_message() -> None:
    texts = extract_texts("chat.completions", CONVERSATION, None)
    assert texts.prefix == f"Answer from the document.\nuser: {DOC}\nassistant: I have read it."
    # Only a system prompt before the question: no prefix beyond it (context_window_efficiency's case).
    assert extract_texts("chat.completions", [CONVERSATION[0], CONVERSATION[3]], None).prefix == ""
    assert extract_texts("responses", "just a question", None).prefix == ""


def test_wrapped_calls_carry_the_signals(openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic,
                                         sdk: IngestReceiver) -> None:
    openai_client.chat.completions.create(model="json-4o", messages=CONVERSATION,
                                          response_format={"type": "json_object"})
    openai_client.responses.create(model="json-5", input="Where is ACME?",
                                   text={"format": {"type": "json_schema", "name": "place", "schema": {}}})
    anthropic_client.messages.create(model="json-sonnet", max_tokens=100, system="Answer from the document.",
                                     messages=CONVERSATION[1:])
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    chat, resp, claude, plain = flushed(sdk)
    overhead = round(1 - len(COMPACT) / len(JSON_ANSWER), 4)
    assert (chat["response_format"], chat["output_overhead"]) == ("json_object", overhead)
    prefix = extract_texts("chat.completions", CONVERSATION, None).prefix
    assert chat["prefix_hash"] == hash_text(prefix)
    assert 0.8 < chat["prefix_share"] < 1
    assert (resp["response_format"], resp["output_overhead"]) == ("json_schema", overhead)
    assert "prefix_hash" not in resp  # a single question: nothing before it
    # Anthropic's system parameter opens the same prefix; no format asked, a JSON answer measured.
    assert claude["prefix_hash"] == chat["prefix_hash"]
    assert (claude["response_format"], claude["output_overhead"]) == ("text", overhead)
    # A plain answer to a plain question: no signal keys at all.
    assert not {"response_format", "output_overhead", "prefix_hash", "prefix_share"} & plain.keys()
    assert "ACME" not in json.dumps([chat, resp, claude])


def test_streams_report_the_format_but_are_not_measured(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    list(openai_client.chat.completions.create(model="json-4o", messages=CONVERSATION, stream=True,
                                               response_format={"type": "json_object"}))
    [event] = flushed(sdk)
    assert event["response_format"] == "json_object" and "output_overhead" not in event


def test_feedback_goes_to_its_endpoint_under_the_calls_request_id(openai_client: openai.OpenAI,
                                                                  sdk: IngestReceiver) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=CONVERSATION)
    request_id = tokentra.last_request_id()
    tokentra.feedback(request_id, 0.75)
    tokentra.feedback(request_id, 1)
    [event] = flushed(sdk)
    assert event["request_id"] == request_id
    assert sdk.feedback == [{"request_id": request_id, "score": 0.75}, {"request_id": request_id, "score": 1.0}]
    for bad in (1.5, -0.1, float("nan"), "0.5", True, None):
        with pytest.raises(ValueError, match="score"):
            tokentra.feedback(request_id, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="request_id"):
        tokentra.feedback("", 0.5)


async def test_last_request_id_is_per_task(async_openai_client: openai.AsyncOpenAI, sdk: IngestReceiver) -> None:
    async def one(question: str) -> str | None:
        await async_openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": question}])
        await asyncio.sleep(0.01)  # the other task's call happens meanwhile
        return tokentra.last_request_id()

    ids = await asyncio.gather(one("a"), one("b"))
    events = await asyncio.to_thread(flushed, sdk)
    assert sorted(ids) == sorted(e["request_id"] for e in events) and ids[0] != ids[1]


def test_signals_and_feedback_reach_the_database(functions_url, tenant, dsn) -> None:
    SECRETS_SEEN.append(DOC)
    tokentra.configure(api_key=tenant.key, url=functions_url, flush_interval=60.0)
    try:
        with ProviderServer() as provider:
            client = tokentra.wrap(openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider.url + "/v1",
                                                 max_retries=0))
            with tokentra.tags(feature="doc-qa"):
                client.chat.completions.create(model="json-4o", messages=CONVERSATION,
                                               response_format={"type": "json_object"})
            request_id = tokentra.last_request_id()
            tokentra.feedback(request_id, 0.8)
        assert tokentra.flush(10)
        stats = tokentra.stats()
    finally:
        _state.reset()
    assert stats["accepted"] == 2 and stats["rejected"] == 0, stats  # the event and its feedback
    with connect(dsn) as conn:
        row = conn.execute("select * from public.usage_records where org_id = %s", (tenant.org_id,)).fetchone()
        score = conn.execute("select score::float8 as s from private.usage_feedback where org_id = %s "
                             "and request_id = %s", (tenant.org_id, request_id)).fetchone()
    assert row["request_id"] == request_id and row["feature"] == "doc-qa"
    signals = row["metadata"]["tokentra"]
    assert signals["response_format"] == "json_object" and 0 < signals["output_overhead"] < 1
    assert len(signals["prefix_hash"]) == 64 and 0 < signals["prefix_share"] < 1
    assert score["s"] == 0.8
    assert "ACME-PRIVATE" not in json.dumps({k: str(v) for k, v in row.items()})
