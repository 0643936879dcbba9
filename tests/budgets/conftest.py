"""Fixtures of the budgets tests (helpers in budget_fixtures.py)."""

from __future__ import annotations

import pytest

from org_fixtures import Org, make_org


@pytest.fixture
def org(dsn: str) -> Org:
    """A committed organization with owner, admin, member and viewer users, an outsider, and an API key."""
    return make_org(dsn)
