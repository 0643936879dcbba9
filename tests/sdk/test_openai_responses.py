"""The Responses API through the real openai client: JSON, SSE ending in response.completed, errors."""

from __future__ import annotations

import openai
import pytest
from sdk_fake_providers import RESPONSES_USAGE, SERVED_MODEL_SUFFIX, ProviderServer
from sdk_ingest_receiver import IngestReceiver, flushed

from tokentra._prompt import hash_text

INSTRUCTIONS = "Answer in one word."
INPUT = [{"role": "user", "content": [{"type": "input_text", "text": "Summarize: Paris is the capital."}]}]


def _check(event: dict, streaming: bool) -> None:
    assert event["endpoint"] == "responses" and event["provider"] == "openai"
    assert event["model"] == "gpt-5-mini" + SERVED_MODEL_SUFFIX
    assert (event["input_tokens"], event["output_tokens"]) == (200, 40)
    assert (event["cached_tokens"], event["cache_write_tokens"], event["reasoning_tokens"]) == (64, 8, 16)
    assert event["raw_usage"] == RESPONSES_USAGE
    assert event["system_prompt_hash"] == hash_text(INSTRUCTIONS)
    assert event["prompt_hash"] == hash_text("user: Summarize: Paris is the capital.")
    assert event["task_type"] == "summarization"
    assert event["is_streaming"] is streaming and event["status"] == "success"
    assert (event["time_to_first_token_ms"] is not None) is streaming


def test_sync_json_and_stream(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    response = openai_client.responses.create(model="gpt-5-mini", instructions=INSTRUCTIONS, input=INPUT)
    assert response.output_text == "Paris."
    events = list(openai_client.responses.create(model="gpt-5-mini", instructions=INSTRUCTIONS, input=INPUT,
                                                 stream=True))
    assert events[-1].type == "response.completed"

    plain, streamed = flushed(sdk)
    _check(plain, streaming=False)
    _check(streamed, streaming=True)


def test_responses_stream_is_not_given_chat_stream_options(openai_client: openai.OpenAI,
                                                           provider_server: ProviderServer) -> None:
    list(openai_client.responses.create(model="gpt-5-mini", input="hi", stream=True))
    assert "stream_options" not in provider_server.requests[0][2]


async def test_async_json_and_stream(async_openai_client: openai.AsyncOpenAI, sdk: IngestReceiver) -> None:
    response = await async_openai_client.responses.create(model="gpt-5-mini", instructions=INSTRUCTIONS,
                                                          input=INPUT)
    assert response.output_text == "Paris."
    stream = await async_openai_client.responses.create(model="gpt-5-mini", instructions=INSTRUCTIONS,
                                                        input=INPUT, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"

    plain, streamed = flushed(sdk)
    _check(plain, streaming=False)
    _check(streamed, streaming=True)


def test_string_input_is_the_user_prompt(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    openai_client.responses.create(model="gpt-5-mini", input="Translate into French: hello")
    [event] = flushed(sdk)
    assert event["prompt_hash"] == hash_text("user: Translate into French: hello")
    assert event["system_prompt_hash"] is None and event["task_type"] == "translation"


def test_error_is_recorded_and_raised(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_client.responses.create(model="fail-400", input="hi")
    [event] = flushed(sdk)
    assert (event["status"], event["error_code"], event["endpoint"]) == ("error", "400", "responses")
