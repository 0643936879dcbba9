"""The consensus tests' fixtures: scripted provider servers, settings pointing at them and at the real
ingest function, an organization with users, and recommendations written as the detectors write them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from org_fixtures import Org, make_org
from tokentra_core.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def settings(llm_settings: Callable[..., Settings]) -> Settings:
    return llm_settings()


@pytest.fixture
def org(dsn: str) -> Org:
    return make_org(dsn)
