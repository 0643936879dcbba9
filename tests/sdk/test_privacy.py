"""Prompt text, system prompts and API keys never leave the process: only their hashes do."""

from __future__ import annotations

import logging

import anthropic
import openai
import pytest
from sdk_fake_providers import PROVIDER_KEY
from sdk_ingest_receiver import TOKENTRA_KEY, IngestReceiver, flushed

SECRET_PROMPT = "PROMPT-SECRET-7f3a the merger closes on friday"
SECRET_SYSTEM = "SYSTEM-SECRET-91c2 you are the deal room assistant"
SECRETS = ["PROMPT-SECRET-7f3a", "merger closes", "SYSTEM-SECRET-91c2", "deal room", PROVIDER_KEY,
           TOKENTRA_KEY, "SECRET"]


async def test_no_prompt_or_key_in_any_posted_body_or_log(
        openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI,
        anthropic_client: anthropic.Anthropic, sdk: IngestReceiver, caplog: pytest.LogCaptureFixture) -> None:
    chat = [{"role": "system", "content": SECRET_SYSTEM}, {"role": "user", "content": SECRET_PROMPT}]
    with caplog.at_level(logging.DEBUG, logger="tokentra"):
        openai_client.chat.completions.create(model="m", messages=chat)
        list(openai_client.chat.completions.create(model="m", messages=chat, stream=True))
        with pytest.raises(openai.BadRequestError):
            openai_client.chat.completions.create(model="fail-400", messages=chat)
        openai_client.responses.create(model="m", instructions=SECRET_SYSTEM, input=SECRET_PROMPT)
        stream = await async_openai_client.responses.create(model="m", instructions=SECRET_SYSTEM,
                                                            input=SECRET_PROMPT, stream=True)
        [event async for event in stream]
        anthropic_client.messages.create(model="m", max_tokens=5, system=SECRET_SYSTEM,
                                         messages=[{"role": "user", "content": SECRET_PROMPT}])
        list(anthropic_client.messages.create(model="m", max_tokens=5, system=SECRET_SYSTEM, stream=True,
                                              messages=[{"role": "user", "content": SECRET_PROMPT}]))
        sdk.fail_next(503)  # a retried body is checked too
        events = flushed(sdk)

    assert len(events) == 7 and len(sdk.requests) == 2
    assert all(e["prompt_hash"] and e["system_prompt_hash"] for e in events)
    for body in sdk.bodies:
        for secret in SECRETS:
            assert secret.encode() not in body
    for secret in SECRETS:
        assert secret not in caplog.text
