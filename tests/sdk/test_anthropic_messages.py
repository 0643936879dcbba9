"""Messages through the real anthropic client, with its usage converted to the ingest convention."""

from __future__ import annotations

import anthropic
import pytest
from sdk_fake_providers import SERVED_MODEL_SUFFIX
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra
from tokentra._prompt import hash_text

SYSTEM = [{"type": "text", "text": "You review   Python code."}]
MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "Review this code: def f(x): return x"}]}]


def _check(event: dict, streaming: bool) -> None:
    assert event["provider"] == "anthropic" and event["endpoint"] == "messages"
    assert event["model"] == "claude-sonnet-4-5" + SERVED_MODEL_SUFFIX
    # Anthropic's input_tokens (10) excludes cache reads (100) and writes (50); ours includes them.
    assert (event["input_tokens"], event["cached_tokens"], event["cache_write_tokens"]) == (160, 100, 50)
    assert (event["output_tokens"], event["reasoning_tokens"]) == (20, 5)
    assert event["service_tier"] == "standard"
    assert event["raw_usage"]["cache_read_input_tokens"] == 100
    assert event["raw_usage"]["output_tokens"] == 20
    assert event["system_prompt_hash"] == hash_text("You review Python code.")
    assert event["prompt_hash"] == hash_text("user: Review this code: def f(x): return x")
    assert event["task_type"] == "code_review"
    assert event["is_streaming"] is streaming and event["status"] == "success"
    assert (event["time_to_first_token_ms"] is not None) is streaming


def test_sync_json_and_stream(anthropic_client: anthropic.Anthropic, sdk: IngestReceiver) -> None:
    message = anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=64, system=SYSTEM,
                                               messages=MESSAGES)
    assert message.content[0].text == "Paris."
    stream = anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=64, system=SYSTEM,
                                              messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    assert [event.type for event in stream][-1] == "message_stop"

    plain, streamed = flushed(sdk)
    _check(plain, streaming=False)
    _check(streamed, streaming=True)


async def test_async_json_and_stream(async_anthropic_client: anthropic.AsyncAnthropic,
                                     sdk: IngestReceiver) -> None:
    with tokentra.tags(project="reviews"):
        await async_anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=64, system=SYSTEM,
                                                     messages=MESSAGES)
        stream = await async_anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                                              system=SYSTEM, messages=MESSAGES, stream=True)
        async with stream:
            kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start"

    plain, streamed = flushed(sdk)
    _check(plain, streaming=False)
    _check(streamed, streaming=True)
    assert plain["metadata"] == streamed["metadata"] == {"project": "reviews"}


@pytest.mark.parametrize(("status", "error"), [
    (400, anthropic.BadRequestError), (429, anthropic.RateLimitError), (500, anthropic.InternalServerError),
])
def test_provider_errors_reach_the_caller_unchanged(anthropic_client: anthropic.Anthropic,
                                                    sdk: IngestReceiver, status: int, error: type) -> None:
    with pytest.raises(error) as caught:
        anthropic_client.messages.create(model=f"fail-{status}", max_tokens=8, messages=MESSAGES)
    assert type(caught.value) is error and caught.value.status_code == status
    [event] = flushed(sdk)
    assert (event["status"], event["error_code"]) == ("error", str(status))


async def test_async_error_while_streaming(async_anthropic_client: anthropic.AsyncAnthropic,
                                           sdk: IngestReceiver) -> None:
    stream = await async_anthropic_client.messages.create(model="stream-error", max_tokens=8,
                                                          messages=MESSAGES, stream=True)
    with pytest.raises(anthropic.APIStatusError) as caught:
        async for _ in stream:
            pass
    [event] = flushed(sdk)
    assert event["status"] == "error" and event["is_streaming"] is True
    assert caught.value.status_code == 200  # the stream had started: the failure is in the body
    assert event["error_code"] == "overloaded_error"
    # message_start arrived before the failure, so what it reported is kept.
    assert event["input_tokens"] == 160
