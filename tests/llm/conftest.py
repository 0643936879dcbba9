"""The LLM layer's fixtures (the scripted servers and settings are in tests/conftest.py): answers agree
unless a test scripts otherwise, and a short timeout so fallbacks are quick."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from llm_fixtures import AGREE

from secret_registry import SECRETS_SEEN
from tokentra_core.llm import LLM, _ledger
from tokentra_core.settings import Settings
from tokentra_dev.testing.llm_servers import Answer


@pytest.fixture(autouse=True)
def _agree(servers) -> None:  # noqa: ANN001 (the Servers of tests/conftest.py)
    servers.script = lambda seen: Answer.json(AGREE)


@pytest.fixture
def make_settings(llm_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    return lambda **overrides: llm_settings(**{"llm_timeout_seconds": 2, **overrides})


@pytest.fixture
async def llm(make_settings: Callable[..., Settings], dsn: str) -> AsyncIterator[LLM]:
    instance = LLM(make_settings(), dsn)
    yield instance
    await instance.aclose()
    SECRETS_SEEN.extend(key.get_secret_value() for key, _ in _ledger._KEYS.values())
