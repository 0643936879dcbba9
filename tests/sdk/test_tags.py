"""Attribution tags: nesting, removal, per-call tags, and isolation across asyncio tasks and threads."""

from __future__ import annotations

import asyncio
import threading

import openai
from sdk_fake_providers import ProviderServer
from sdk_ingest_receiver import IngestReceiver, flushed

import tokentra
from tokentra._prompt import hash_text


def test_scopes_nest_and_none_removes_a_tag() -> None:
    assert tokentra.current_tags() == {}
    with tokentra.tags(feature="chat", team="growth") as outer:
        assert outer == {"feature": "chat", "team": "growth"}
        with tokentra.tags(team="search", user_id=None, tenant="acme"):
            assert tokentra.current_tags() == {"feature": "chat", "team": "search", "tenant": "acme"}
            with tokentra.tags(feature=None):
                assert tokentra.current_tags() == {"team": "search", "tenant": "acme"}
        assert tokentra.current_tags() == {"feature": "chat", "team": "growth"}
    assert tokentra.current_tags() == {}


def test_the_same_scope_object_can_be_reentered() -> None:
    scope = tokentra.tags(project="p")
    with scope:
        with scope:
            assert tokentra.current_tags() == {"project": "p"}
        assert tokentra.current_tags() == {"project": "p"}
    assert tokentra.current_tags() == {}


async def test_concurrent_tasks_keep_their_own_tags() -> None:
    both_inside = asyncio.Barrier(2)

    async def worker(name: str) -> dict:
        async with tokentra.tags(feature=name):
            await both_inside.wait()  # both scopes are open at once here
            return tokentra.current_tags()

    assert await asyncio.gather(worker("a"), worker("b")) == [{"feature": "a"}, {"feature": "b"}]


async def test_tags_follow_asyncio_to_thread_but_not_a_bare_thread() -> None:
    seen: list[dict] = []
    with tokentra.tags(team="infra"):
        assert await asyncio.to_thread(tokentra.current_tags) == {"team": "infra"}
        thread = threading.Thread(target=lambda: seen.append(tokentra.current_tags()))
        thread.start()
        thread.join()
    assert seen == [{}]  # a new thread starts with an empty context, as contextvars do


async def test_wrapped_calls_in_concurrent_tasks_are_attributed_to_their_task(
        async_openai_client: openai.AsyncOpenAI, sdk: IngestReceiver) -> None:
    async def ask(user: str) -> None:
        with tokentra.tags(user_id=user):
            await asyncio.sleep(0)
            await async_openai_client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"question from {user}"}])

    users = [f"u{i}" for i in range(8)]
    await asyncio.gather(*(ask(user) for user in users))
    by_prompt = {e["prompt_hash"]: e["metadata"] for e in flushed(sdk)}
    assert by_prompt == {hash_text(f"user: question from {u}"): {"user_id": u} for u in users}


def test_per_call_tags_are_merged_and_never_reach_the_provider(
        openai_client: openai.OpenAI, sdk: IngestReceiver, provider_server: ProviderServer) -> None:
    with tokentra.tags(feature="search", team="growth"):
        openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                              tokentra_tags={"team": None, "user_id": "u1", "ab": 2})
    [event] = flushed(sdk)
    assert event["metadata"] == {"feature": "search", "user_id": "u1", "ab": 2}
    assert "tokentra_tags" not in provider_server.requests[0][2]
