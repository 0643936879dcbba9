"""Fixtures of the intelligence tests: organizations with users (org_fixtures), and hourly usage written
straight into the rollups' raw source in bulk, so a month of history costs milliseconds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from org_fixtures import Org, make_org

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def org(dsn: str) -> Org:
    return make_org(dsn)


@pytest.fixture
def other_org(dsn: str) -> Org:
    return make_org(dsn)
