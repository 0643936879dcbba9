"""Chat completions through the real openai client, sync and async, JSON and streaming."""

from __future__ import annotations

import datetime
import random
import time

import openai
import pytest
from sdk_fake_providers import CHAT_USAGE, SERVED_MODEL_SUFFIX, ProviderServer
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra
from tokentra._prompt import hash_text

MESSAGES = [
    {"role": "system", "content": "You are   a terse\ngeography assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def _check_usage(event: dict) -> None:
    # The chat convention is already OpenAI's: prompt_tokens includes the cached part.
    assert event["input_tokens"] == CHAT_USAGE["prompt_tokens"]
    assert event["output_tokens"] == CHAT_USAGE["completion_tokens"]
    assert event["cached_tokens"] == 100
    assert event["cache_write_tokens"] == 5
    assert event["reasoning_tokens"] == 12
    assert event["raw_usage"]["prompt_tokens"] == 120


def test_a_plain_call_is_recorded_as_it_was_made(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    # The caller's thread keeps references; the event is built later on the sender thread. What the
    # caller changes after the call, and when the sender gets to it, must not show in the event.
    messages = list(MESSAGES)
    call_tags = {"feature": "geo", "team": None}
    rng = random.Random()
    with tokentra.tags(team="search", user_id="u-1"):
        before = time.time()
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tokentra_tags=call_tags,
                                              response_format={"type": "json_object"})
        after = time.time()
    request_id = tokentra.last_request_id()
    messages.append({"role": "assistant", "content": "Paris."})
    call_tags["feature"] = "changed"
    time.sleep(rng.uniform(0.3, 0.6))  # the event is built at the flush, well after the call

    [event] = flushed(sdk)
    assert event["request_id"] == request_id
    assert event["metadata"] == {"feature": "geo", "user_id": "u-1"}  # None removed the scope's team
    assert event["prompt_hash"] == hash_text("user: What is the capital of France?")
    assert event["response_format"] == "json_object"
    stamped = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
    assert before - 0.002 <= stamped <= after + 0.002, (before, stamped, after)


def test_sync_json_call_is_recorded(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    with tokentra.tags(feature="geo", team="search"):
        reply = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(reply, openai.types.chat.ChatCompletion)
    assert reply.choices[0].message.content == "Paris."

    [event] = flushed(sdk)
    _check_usage(event)
    assert event["provider"] == "openai"
    assert event["endpoint"] == "chat.completions"
    assert event["model"] == "gpt-4o-mini" + SERVED_MODEL_SUFFIX  # the response's model wins
    assert event["status"] == "success" and event["error_code"] is None
    assert event["is_streaming"] is False and event["time_to_first_token_ms"] is None
    assert event["service_tier"] == "default"
    assert event["metadata"] == {"feature": "geo", "team": "search"}
    assert event["system_prompt_hash"] == hash_text("You are a terse geography assistant.")
    assert event["prompt_hash"] == hash_text("user: What is the capital of France?")
    assert event["task_type"] == "information_lookup"
    assert event["latency_ms"] >= 0 and event["retry_count"] == 0
    assert event["timestamp"].endswith("Z")


def test_sync_stream_asks_for_usage_and_records_it(openai_client: openai.OpenAI, sdk: IngestReceiver,
                                                   provider_server: ProviderServer) -> None:
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris."
    # The documented side effect: one extra final chunk with no choices, carrying the usage.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None

    [(_, _, body)] = provider_server.requests
    assert body["stream_options"] == {"include_usage": True}
    [event] = flushed(sdk)
    _check_usage(event)
    assert event["is_streaming"] is True and event["status"] == "success"
    assert event["time_to_first_token_ms"] is not None
    assert 0 <= event["time_to_first_token_ms"] <= event["latency_ms"]


def test_callers_stream_options_are_kept_and_not_mutated(openai_client: openai.OpenAI,
                                                         provider_server: ProviderServer) -> None:
    options = {"include_obfuscation": False}
    list(openai_client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                               stream_options=options))
    assert options == {"include_obfuscation": False}
    sent = provider_server.requests[0][2]["stream_options"]
    assert sent == {"include_obfuscation": False, "include_usage": True}

    # An explicit include_usage=False is the caller's choice and is respected.
    list(openai_client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                               stream_options={"include_usage": False}))
    assert provider_server.requests[1][2]["stream_options"] == {"include_usage": False}


def test_stream_used_as_context_manager(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    with openai_client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        for _ in stream:
            pass
    [event] = flushed(sdk)
    assert event["status"] == "success" and event["output_tokens"] == 30


def test_stream_closed_early_is_recorded_as_such(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    with openai_client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        next(stream)
    [event] = flushed(sdk)
    assert event["status"] == "error" and event["error_code"] == "stream_closed_early"


async def test_async_json_and_stream(async_openai_client: openai.AsyncOpenAI, sdk: IngestReceiver) -> None:
    reply = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                              tokentra_tags={"feature": "async"})
    assert reply.choices[0].message.content == "Paris."
    stream = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                               stream=True)
    assert isinstance(stream, openai.AsyncStream)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None

    plain, streamed = flushed(sdk)
    for event in (plain, streamed):
        _check_usage(event)
    assert plain["is_streaming"] is False and plain["metadata"] == {"feature": "async"}
    assert streamed["is_streaming"] is True and streamed["time_to_first_token_ms"] is not None


@pytest.mark.parametrize(("status", "error"), [
    (400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError),
])
def test_provider_errors_reach_the_caller_unchanged(openai_client: openai.OpenAI, sdk: IngestReceiver,
                                                    status: int, error: type) -> None:
    with pytest.raises(error) as caught:
        openai_client.chat.completions.create(model=f"fail-{status}", messages=MESSAGES)
    assert type(caught.value) is error and caught.value.status_code == status
    [event] = flushed(sdk)
    assert event["status"] == "error" and event["error_code"] == str(status)
    assert event["model"] == f"fail-{status}" and event["input_tokens"] == 0


async def test_async_provider_error(async_openai_client: openai.AsyncOpenAI, sdk: IngestReceiver) -> None:
    with pytest.raises(openai.RateLimitError):
        await async_openai_client.chat.completions.create(model="fail-429", messages=MESSAGES, stream=True)
    [event] = flushed(sdk)
    assert (event["status"], event["error_code"], event["is_streaming"]) == ("error", "429", True)


def test_error_in_the_middle_of_a_stream(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    stream = openai_client.chat.completions.create(model="stream-error", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        list(stream)
    assert caught.value.message == "server broke"
    [event] = flushed(sdk)
    assert event["status"] == "error" and event["error_code"] == "server_error"


def test_client_retries_are_counted(provider_server: ProviderServer, sdk: IngestReceiver) -> None:
    raw = openai.OpenAI(api_key="sk-x", base_url=provider_server.url + "/v1", max_retries=2)
    client = tokentra.wrap(raw)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fail-500", messages=MESSAGES)
    raw.close()
    assert len(provider_server.requests) == 3
    [event] = flushed(sdk)
    assert event["retry_count"] == 2
