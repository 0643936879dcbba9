"""Fixtures of the analytics tests (helpers in analytics_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from org_fixtures import Org, make_org
from tokentra_core.db import connect


@pytest.fixture
def org_a(dsn: str) -> Org:
    return make_org(dsn)


@pytest.fixture
def org_b(dsn: str) -> Org:
    return make_org(dsn)


@pytest.fixture
def analyst_roles(dsn: str) -> Iterator[list[str]]:
    """Analyst logins made by a test, dropped afterwards (roles outlive the database's transactions)."""
    made: list[str] = []
    yield made
    with connect(dsn) as conn:
        for role in made:
            conn.execute("select private.drop_analyst_role(%s)", (role,))
        conn.commit()
