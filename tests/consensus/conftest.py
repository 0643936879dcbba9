"""The consensus tests' fixtures: scripted provider servers, settings pointing at them and at the real
ingest function, an organization with users, and recommendations written as the detectors write them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from org_fixtures import Org, make_org
from secret_registry import SECRETS_SEEN

from tokentra_platform.settings import Settings
from tokentra_platform.testing.llm_servers import Answer, LLMServers, SeenRequest
from worker.llm import _ledger

sys.path.insert(0, str(Path(__file__).parent))

Script = Callable[[SeenRequest], Answer]


class Servers:
    """LLMServers whose script each test sets."""

    def __init__(self) -> None:
        self.script: Script = lambda seen: Answer.error(500)
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
    # The internal ingest key the LLM layer minted is a secret like any other.
    SECRETS_SEEN.extend(key.get_secret_value() for key, _ in _ledger._KEYS.values())


@pytest.fixture
def settings(servers: Servers, functions_url: str) -> Settings:
    return Settings(**servers.inner.env(), llm_ingest_url=f"{functions_url}/ingest", llm_timeout_seconds=5)


@pytest.fixture
def org(dsn: str) -> Org:
    return make_org(dsn)
