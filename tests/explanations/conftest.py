"""Fixtures of the explanation tests: an organization with a cost spike (usage, an open anomaly) and a
recommendation, and the scripted provider servers with settings pointing at them and the real ingest."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from org_fixtures import Org, make_org
from tokentra_core.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))

from explain_fixtures import Spike, seed_spike  # noqa: E402


@pytest.fixture
def llm_on(llm_settings: Callable[..., Settings]) -> Settings:
    """Both providers configured, at the scripted servers; TokenTRA's own usage goes to the real ingest."""
    return llm_settings()


@pytest.fixture
def llm_off() -> Settings:
    return Settings(OPENAI_API_KEY="", ANTHROPIC_API_KEY="")


@pytest.fixture
def org(dsn: str) -> Org:
    return make_org(dsn)


@pytest.fixture
def spike(dsn: str, org: Org) -> Spike:
    return seed_spike(dsn, org.id)
