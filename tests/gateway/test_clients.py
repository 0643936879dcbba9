"""The official openai and anthropic clients, changed only in base URL and key, against the gateway: answers
pass through, usage is recorded once per call from the provider's own numbers, stream usage is asked for
on the client's behalf and kept from it when it did not ask."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx

from tokentra_dev.testing.gateway_upstream import SECRET_HEADERS


def _prompt(rng: random.Random) -> list[dict[str, Any]]:
    vocabulary = ["cost", "token", "budget", "paris", "model", "cache"]
    words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 60)))
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"{uuid.uuid4()} {words}"}]
    if rng.random() < 0.5:
        messages.insert(0, {"role": "system", "content": "You are terse."})
    return messages


def test_openai_chat_sync_passes_through_and_records_once(gw, openai_client, upstream) -> None:
    key = gw.key(team="search", end_user_id="u-7")
    client = openai_client(key)
    rng = random.Random(1)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=_prompt(rng), max_tokens=17)
    completion = raw.parse()
    # the provider's body, its request id and rate-limit headers; nothing naming the provider account
    assert completion.choices[0].message.content == "Paris."
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.usage.completion_tokens == 17
    assert raw.headers["x-request-id"] == "req_123"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4999"
    assert not any(name in raw.headers for name in SECRET_HEADERS)
    # the provider saw the organization's key, never the virtual key
    path, headers, _ = upstream.app.requests[-1]
    assert path == "/v1/chat/completions" and key not in str(headers)
    rows = gw.usage(key, 1)
    assert len(rows) == 1
    row = rows[0]
    assert (row["source"], row["provider"], row["model"], row["endpoint"]) == (
        "gateway", "openai", "gpt-4o-mini-2024-07-18", "chat.completions")
    assert row["output_tokens"] == 17 and row["reasoning_tokens"] == 17 // 3
    assert row["input_tokens"] == completion.usage.prompt_tokens
    assert row["cached_tokens"] == completion.usage.prompt_tokens_details.cached_tokens
    assert (row["team"], row["end_user_id"], row["status"]) == ("search", "u-7", "success")
    assert row["priced"] and row["cost_usd"] > 0
    assert row["prompt_hash"] and len(row["prompt_hash"]) == 64


def test_openai_chat_stream_usage_is_recorded_and_hidden_unless_asked(gw, openai_client) -> None:
    key = gw.key()
    client = openai_client(key)
    rng = random.Random(2)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=_prompt(rng), max_tokens=9,
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris."
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    asked = list(client.chat.completions.create(model="gpt-4o-mini", messages=_prompt(rng), max_tokens=11,
                                                stream=True, stream_options={"include_usage": True}))
    assert asked[-1].usage is not None and asked[-1].usage.completion_tokens == 11
    rows = gw.usage(key, 2)
    assert [r["output_tokens"] for r in rows] == [9, 11]
    assert all(r["is_streaming"] and r["input_tokens"] > 0 and r["status"] == "success" for r in rows)
    assert all(r["time_to_first_token_ms"] is not None for r in rows)


async def _openai_calls(client: Any) -> tuple[Any, Any, list[Any], Any]:
    response = await client.responses.create(model="gpt-4.1-mini", input="What is the capital of France?",
                                             max_output_tokens=21)
    streamed = [e async for e in await client.responses.create(
        model="gpt-4.1-mini", input=[{"role": "user", "content": "and of Italy?"}], stream=True)]
    embedding = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    models = await client.models.list()
    return response, embedding, streamed, models


def test_openai_async_responses_and_embeddings(gw, openai_client) -> None:
    key = gw.key()

    async def run() -> tuple[Any, Any, list[Any], Any]:
        async with openai_client(key, asynchronous=True) as client:
            return await _openai_calls(client)

    response, embedding, streamed, models = asyncio.run(run())
    assert response.output_text == "Paris." and response.usage.output_tokens == 21
    assert streamed[-1].type == "response.completed"
    assert len(embedding.data) == 3
    assert {m.id for m in models.data} >= {"gpt-4o-mini"}
    rows = gw.usage(key, 3)
    by_endpoint = {r["endpoint"]: r for r in rows}
    assert set(by_endpoint) == {"responses", "embeddings"} and len(rows) == 3
    assert by_endpoint["embeddings"]["input_tokens"] == embedding.usage.prompt_tokens
    assert sorted(r["output_tokens"] for r in rows if r["endpoint"] == "responses") == [21, 30]


def test_anthropic_messages_sync_stream_async_and_count_tokens(gw, anthropic_client, upstream) -> None:
    key = gw.key(project="agents")
    client = anthropic_client(key)
    rng = random.Random(3)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=13, messages=_prompt(rng)[-1:],
                                     system="Be brief.")
    assert message.content[0].text == "Paris." and message.usage.output_tokens == 13
    assert upstream.app.requests[-1][1]["x-api-key"] != key
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=7, messages=_prompt(rng)[-1:]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Paris." and final.usage.output_tokens == 7

    async def run() -> Any:
        async with anthropic_client(key, asynchronous=True) as aclient:
            return await aclient.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                                 messages=[{"role": "user", "content": "hi"}])

    assert asyncio.run(run()).usage.output_tokens == 5
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens > 0
    rows = gw.usage(key, 3)
    assert len(rows) == 3, "count_tokens is free and not recorded"
    assert sorted(r["output_tokens"] for r in rows) == [5, 7, 13]
    first = next(r for r in rows if r["output_tokens"] == 13)
    # Anthropic's input_tokens leaves cache reads and writes out: the row counts all three
    assert first["input_tokens"] == message.usage.input_tokens + 6 + 4
    assert (first["cached_tokens"], first["cache_write_tokens"], first["project"]) == (6, 4, "agents")
    assert all(r["provider"] == "anthropic" and r["endpoint"] == "messages" for r in rows)


def test_provider_errors_pass_through_with_status_body_and_retry_after(gw, gateway_url) -> None:
    key = gw.key()
    for status in (400, 404, 429, 503):
        response = httpx.post(f"{gateway_url}/openai/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                              json={"model": f"fail-{status}", "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == status
        assert response.json()["error"]["message"] == f"upstream status {status}"
        assert response.headers["retry-after"] == "7"
    anthropic = httpx.post(f"{gateway_url}/anthropic/v1/messages", headers={"x-api-key": key},
                           json={"model": "fail-529", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    assert anthropic.status_code == 529 and anthropic.json()["error"]["type"] == "overloaded_error"
    rows = gw.usage(key, 5)
    assert sorted(r["status"] for r in rows) == ["error", "error", "error", "error", "rate_limited"]
    assert all(r["input_tokens"] == 0 and r["output_tokens"] == 0 for r in rows)


def test_bad_requests_get_provider_style_errors(gw, gateway_url) -> None:
    key = gw.key()
    auth = {"authorization": f"Bearer {key}"}
    not_json = httpx.post(f"{gateway_url}/openai/v1/chat/completions", headers=auth, content=b"{nope")
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]["message"]
    no_model = httpx.post(f"{gateway_url}/openai/v1/chat/completions", headers=auth, json={"messages": []})
    assert no_model.status_code == 400 and no_model.json()["error"]["message"].startswith("model:")
    no_key = httpx.post(f"{gateway_url}/anthropic/v1/messages", json={"model": "claude-haiku-4-5"})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
