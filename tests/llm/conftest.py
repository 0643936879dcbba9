"""The LLM layer's fixtures: scripted provider servers, settings pointing at them and at the real ingest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from llm_fixtures import AGREE
from secret_registry import SECRETS_SEEN

from tokentra_platform.settings import Settings
from tokentra_platform.testing.llm_servers import Answer, LLMServers, SeenRequest
from worker.llm import LLM, _ledger

Script = Callable[[SeenRequest], Answer]


class Servers:
    """LLMServers whose script a test sets; starts once per test."""

    def __init__(self) -> None:
        self.script: Script = lambda seen: Answer.json(AGREE)
        self.inner = LLMServers(lambda seen: self.script(seen))

    @property
    def seen(self) -> list[SeenRequest]:
        return self.inner.seen


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    with s.inner:
        env = s.inner.env()
        SECRETS_SEEN.extend([env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"]])
        yield s


@pytest.fixture
def make_settings(servers: Servers, functions_url: str) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values = {**servers.inner.env(), "llm_ingest_url": f"{functions_url}/ingest",
                  "llm_timeout_seconds": 2, **overrides}
        return Settings(**values)
    return make


@pytest.fixture
async def llm(make_settings: Callable[..., Settings], dsn: str) -> AsyncIterator[LLM]:
    instance = LLM(make_settings(), dsn)
    yield instance
    await instance.aclose()
    # The internal ingest key the layer minted is a secret like any other.
    SECRETS_SEEN.extend(key.get_secret_value() for key, _ in _ledger._KEYS.values())
