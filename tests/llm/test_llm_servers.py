"""The scripted wire-protocol servers, seen through the real openai and anthropic clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anthropic
import openai
import pytest

from tokentra_dev.testing.llm_servers import Answer, LLMServers, SeenRequest

SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}
FORMAT = {"type": "json_schema", "json_schema": {"name": "Position", "schema": SCHEMA, "strict": True}}
TOOL = {"name": "Position", "input_schema": SCHEMA}
LONG_SYSTEM = "Review cost recommendations with care. " * 200  # ~7,800 characters: ~1,950 tokens, cacheable


@contextmanager
def serving(script: Callable[[SeenRequest], Answer]) -> Iterator[tuple[LLMServers, openai.OpenAI, anthropic.Anthropic]]:
    """The servers and both real clients pointed at them (closed afterwards)."""
    with LLMServers(script) as servers:
        env = servers.env()
        with (openai.OpenAI(api_key=env["OPENAI_API_KEY"], base_url=env["OPENAI_BASE_URL"], max_retries=0) as oa,
              anthropic.Anthropic(api_key=env["ANTHROPIC_API_KEY"], base_url=env["ANTHROPIC_BASE_URL"],
                                  max_retries=0) as an):
            yield servers, oa, an


def ask_openai(client: openai.OpenAI, system: str = "sys", user: str = "hi"):
    return client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        response_format=FORMAT)


def ask_anthropic(client: anthropic.Anthropic, system: str = "sys", user: str = "hi"):
    return client.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": user}],
        system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        tools=[TOOL], tool_choice={"type": "tool", "name": "Position"})


def test_structured_answers_arrive_in_each_providers_native_shape():
    with serving(lambda seen: Answer.json({"verdict": "accept"})) as (servers, oa, an):
        assert ask_openai(oa).choices[0].message.content == '{"verdict": "accept"}'
        [block] = ask_anthropic(an).content
        assert (block.type, block.name, block.input) == ("tool_use", "Position", {"verdict": "accept"})
    assert [(s.provider, s.model, s.system, s.prompt, s.schema_name) for s in servers.seen] == [
        ("openai", "gpt-4.1-mini", "sys", "hi", "Position"), ("anthropic", "claude-haiku-4-5", "sys", "hi", "Position")]


def test_token_counts_are_about_four_characters_per_token():
    prompt = "x" * 4000
    with serving(lambda seen: Answer.json({"verdict": "a" * 400})) as (servers, oa, an):
        usage = ask_openai(oa, user=prompt).usage
        message = ask_anthropic(an, user=prompt)
    assert 1000 <= usage.prompt_tokens <= 1300 and 100 <= usage.completion_tokens <= 110
    assert 1000 <= message.usage.input_tokens <= 1300 and 100 <= message.usage.output_tokens <= 110


def test_a_long_system_prompt_is_cached_from_the_second_request_on():
    with serving(lambda seen: Answer.json({"verdict": "accept"})) as (servers, oa, an):
        first, second = ask_openai(oa, LONG_SYSTEM), ask_openai(oa, LONG_SYSTEM, "other question")
        assert first.usage.prompt_tokens_details.cached_tokens == 0
        cached = second.usage.prompt_tokens_details.cached_tokens
        assert cached > 1024 and cached % 128 == 0 and cached < second.usage.prompt_tokens
        write, read = ask_anthropic(an, LONG_SYSTEM).usage, ask_anthropic(an, LONG_SYSTEM).usage
        assert write.cache_creation_input_tokens > 1024 and write.cache_read_input_tokens == 0
        assert read.cache_read_input_tokens == write.cache_creation_input_tokens
        assert ask_openai(oa).usage.prompt_tokens_details.cached_tokens == 0  # short prompts are never cached


@pytest.mark.parametrize("status, openai_error, anthropic_error", [
    (500, openai.InternalServerError, anthropic.InternalServerError),
    (429, openai.RateLimitError, anthropic.RateLimitError),
    (529, openai.APIStatusError, anthropic.OverloadedError),
])
def test_errors_have_the_providers_shape(status, openai_error, anthropic_error):
    with serving(lambda seen: Answer.error(status)) as (servers, oa, an):
        with pytest.raises(openai_error) as oe:
            ask_openai(oa)
        with pytest.raises(anthropic_error) as ae:
            ask_anthropic(an)
    assert oe.value.status_code == ae.value.status_code == status


def test_malformed_answers_and_delays():
    answers = iter([Answer.malformed("not json"), Answer.malformed('{"wrong": 1}'),
                    Answer.delay(0.2, Answer.malformed("prose"))])
    with serving(lambda seen: next(answers)) as (servers, oa, an):
        assert ask_openai(oa).choices[0].message.content == "not json"
        assert ask_anthropic(an).content[0].input == {"wrong": 1}  # JSON with wrong fields: still a tool call
        [text] = ask_anthropic(an).content
        assert (text.type, text.text) == ("text", "prose")  # not JSON: the model answered in prose


def test_a_delay_longer_than_the_clients_timeout_times_out():
    with serving(lambda seen: Answer.delay(3, Answer.json({"verdict": "late"}))) as (servers, oa, _):
        with pytest.raises(openai.APITimeoutError):
            oa.with_options(timeout=0.3).chat.completions.create(
                model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])


def test_a_script_that_raises_answers_500_naming_the_error():
    def script(seen):
        raise KeyError("no answer for this model")
    with serving(script) as (servers, oa, _):
        with pytest.raises(openai.InternalServerError, match="script raised KeyError"):
            ask_openai(oa)
