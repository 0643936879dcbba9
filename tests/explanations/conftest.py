"""Fixtures of the explanation tests: an organization with a cost spike (usage, an open anomaly) and a
recommendation, and the scripted provider servers with settings pointing at them and the real ingest."""

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

from explain_fixtures import Spike, seed_spike  # noqa: E402

Script = Callable[[SeenRequest], Answer]


class Servers:
    """LLMServers whose script a test sets."""

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
    SECRETS_SEEN.extend(key.get_secret_value() for key, _ in _ledger._KEYS.values())


@pytest.fixture
def llm_on(servers: Servers, functions_url: str) -> Settings:
    """Both providers configured, at the scripted servers; TokenTRA's own usage goes to the real ingest."""
    return Settings(**servers.inner.env(), llm_ingest_url=f"{functions_url}/ingest", llm_timeout_seconds=5)


@pytest.fixture
def llm_off() -> Settings:
    return Settings(OPENAI_API_KEY="", ANTHROPIC_API_KEY="")


@pytest.fixture
def org(dsn: str) -> Org:
    return make_org(dsn)


@pytest.fixture
def spike(dsn: str, org: Org) -> Spike:
    return seed_spike(dsn, org.id)
