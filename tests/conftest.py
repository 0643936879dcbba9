"""Shared fixtures: every test runs against the real Postgres the project provisions (or DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tokentra_platform.db import connect
from tokentra_platform.migrations import migrate
from tokentra_platform.settings import get_settings


@pytest.fixture(scope="session")
def dsn() -> str:
    settings = get_settings()
    migrate(settings.dsn, log=lambda *_: None)  # idempotent: ./scripts/test already migrated
    return settings.dsn


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back at the end: each test sees only its own rows."""
    with connect(dsn) as conn:
        yield conn
        conn.rollback()
