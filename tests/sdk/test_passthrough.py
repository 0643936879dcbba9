"""The wrapped client behaves like the original for everything TokenTRA does not record."""

from __future__ import annotations

import inspect

import anthropic
import openai
import pytest
from sdk_fake_providers import PROVIDER_KEY, ProviderServer
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("factory", [openai.OpenAI, openai.AsyncOpenAI, anthropic.Anthropic,
                                     anthropic.AsyncAnthropic])
def test_wrapped_clients_pass_type_checks_and_attributes(factory: type) -> None:
    raw = factory(api_key=PROVIDER_KEY, base_url="http://127.0.0.1:9", max_retries=0)
    client = tokentra.wrap(raw)
    assert isinstance(client, factory)
    assert client.api_key == PROVIDER_KEY and client.max_retries == 0
    assert client.models is raw.models  # resources TokenTRA does not record are the originals
    assert repr(client) == repr(raw) and "models" in dir(client)
    assert client == raw and hash(client) == hash(raw)
    assert tokentra.wrap(client) is client
    client.timeout = 12.5  # writes go to the client itself
    assert raw.timeout == 12.5
    recorded = client.chat.completions.create if hasattr(raw, "chat") else client.messages.create
    original = raw.chat.completions.create if hasattr(raw, "chat") else raw.messages.create
    assert inspect.signature(recorded) == inspect.signature(original)
    assert inspect.iscoroutinefunction(recorded) == factory.__name__.startswith("Async")


def test_wrap_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        tokentra.wrap(object())


def test_with_options_and_context_manager_stay_wrapped(provider_server: ProviderServer,
                                                       sdk: IngestReceiver) -> None:
    raw = openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider_server.url + "/v1", max_retries=0)
    with tokentra.wrap(raw) as client:
        assert isinstance(client, openai.OpenAI)
        client.with_options(timeout=5).chat.completions.create(model="m", messages=MESSAGES)
        client.copy(max_retries=0).responses.create(model="m", input="hi")
    assert [e["endpoint"] for e in flushed(sdk)] == ["chat.completions", "responses"]


def test_raw_response_access_works_and_is_not_recorded(openai_client: openai.OpenAI,
                                                       sdk: IngestReceiver) -> None:
    raw = openai_client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.http_request.method == "POST" and raw.parse().choices[0].message.content == "Paris."
    assert flushed(sdk) == []


def test_parse_is_recorded_like_create(openai_client: openai.OpenAI, sdk: IngestReceiver) -> None:
    completion = openai_client.chat.completions.parse(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "Paris."
    [event] = flushed(sdk)
    assert event["endpoint"] == "chat.completions" and event["input_tokens"] == 120


def test_disabled_sdk_records_nothing_but_still_strips_its_kwarg(openai_client: openai.OpenAI,
                                                                 sdk: IngestReceiver) -> None:
    tokentra.configure(enabled=False)
    reply = openai_client.chat.completions.create(model="m", messages=MESSAGES, tokentra_tags={"a": 1})
    assert reply.choices[0].message.content == "Paris."
    assert flushed(sdk) == [] and tokentra.stats()["enqueued"] == 0
