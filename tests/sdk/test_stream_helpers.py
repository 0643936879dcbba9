"""The clients' own `.stream()` helpers are recorded like `create(stream=True)`."""

from __future__ import annotations

import anthropic
import openai
import pytest
from sdk_fake_providers import ProviderServer
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra

MESSAGES = [{"role": "user", "content": "Summarize: the sky is blue."}]


def test_anthropic_messages_stream(anthropic_client: anthropic.Anthropic, sdk: IngestReceiver) -> None:
    with anthropic_client.messages.stream(model="claude", max_tokens=8, messages=MESSAGES,
                                          tokentra_tags={"feature": "helper"}) as stream:
        assert "".join(stream.text_stream) == "Paris."
        assert stream.get_final_message().usage.output_tokens == 20
    [event] = flushed(sdk)
    assert (event["endpoint"], event["is_streaming"], event["status"]) == ("messages", True, "success")
    assert (event["input_tokens"], event["output_tokens"]) == (160, 20)
    assert event["time_to_first_token_ms"] is not None and event["metadata"] == {"feature": "helper"}


async def test_async_anthropic_messages_stream(async_anthropic_client: anthropic.AsyncAnthropic,
                                               sdk: IngestReceiver) -> None:
    async with async_anthropic_client.messages.stream(model="claude", max_tokens=8,
                                                      messages=MESSAGES) as stream:
        message = await stream.get_final_message()
    assert message.content[0].text == "Paris."
    [event] = flushed(sdk)
    assert event["status"] == "success" and event["output_tokens"] == 20


def test_openai_chat_completions_stream(openai_client: openai.OpenAI, sdk: IngestReceiver,
                                        provider_server: ProviderServer) -> None:
    with openai_client.chat.completions.stream(model="gpt", messages=MESSAGES) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[0].message.content == "Paris."
    assert provider_server.requests[0][2]["stream_options"] == {"include_usage": True}
    [event] = flushed(sdk)
    assert (event["endpoint"], event["status"], event["input_tokens"]) == ("chat.completions", "success", 120)


async def test_async_openai_responses_stream(async_openai_client: openai.AsyncOpenAI,
                                             sdk: IngestReceiver) -> None:
    async with async_openai_client.responses.stream(model="gpt", input="Summarize: hi") as stream:
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.completed"
    [event] = flushed(sdk)
    assert (event["endpoint"], event["status"], event["output_tokens"]) == ("responses", "success", 40)


def test_leaving_the_block_unread_is_a_stream_closed_early(anthropic_client: anthropic.Anthropic,
                                                           sdk: IngestReceiver) -> None:
    with anthropic_client.messages.stream(model="claude", max_tokens=8, messages=MESSAGES):
        pass
    [event] = flushed(sdk)
    assert (event["status"], event["error_code"]) == ("error", "stream_closed_early")


def test_a_refused_helper_request_is_recorded_and_raised(anthropic_client: anthropic.Anthropic,
                                                         sdk: IngestReceiver) -> None:
    with pytest.raises(anthropic.RateLimitError):
        with anthropic_client.messages.stream(model="fail-429", max_tokens=8, messages=MESSAGES):
            pass
    [event] = flushed(sdk)
    assert (event["status"], event["error_code"], event["is_streaming"]) == ("error", "429", True)
    assert tokentra.stats()["internal_errors"] == 0
