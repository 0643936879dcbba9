"""Fixtures of the provider billing sync: the local admin-report servers, organizations connected to them
with admin keys, and the real job run against them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from secret_registry import SECRETS_SEEN
from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_core.settings import Settings
from tokentra_dev.testing.provider_admin_servers import (
    ANTHROPIC_ADMIN_KEY,
    OPENAI_ADMIN_KEY,
    AdminLedger,
    ProviderAdminServer,
)
from tokentra_worker.jobs import JobContext
from tokentra_worker.provider_sync import run_provider_sync

SECRETS_SEEN.extend([OPENAI_ADMIN_KEY, ANTHROPIC_ADMIN_KEY])


@dataclass
class Connected:
    org_id: str
    openai: uuid.UUID
    anthropic: uuid.UUID


@pytest.fixture
def admin_server() -> Iterator[ProviderAdminServer]:
    with ProviderAdminServer(AdminLedger()) as server:
        yield server


@pytest.fixture
def connect_org(dsn: str) -> Callable[..., Connected]:
    """A new organization with an OpenAI and an Anthropic connection pointing at `server`."""
    def make(server: ProviderAdminServer, openai_key: str = OPENAI_ADMIN_KEY,
             anthropic_key: str = ANTHROPIC_ADMIN_KEY) -> Connected:
        with connect(dsn, autocommit=True) as conn:
            org = admin.create_org(conn, f"recon-{uuid.uuid4().hex[:8]}")
            openai = store_provider_connection(conn, org.id, "openai", "sk-inference-openai-0000", admin_key=openai_key,
                                               base_url=server.openai_base_url)
            anthropic = store_provider_connection(conn, org.id, "anthropic", "sk-ant-inference-0000",
                                                  admin_key=anthropic_key, base_url=server.anthropic_base_url)
        return Connected(str(org.id), openai, anthropic)
    return make


@pytest.fixture
def sync(dsn: str) -> Callable[..., str]:
    """Run the reconciliation job's sync as the worker does (fast retries; small pages unless told)."""
    def run(*orgs: str, now: datetime | None = None, **overrides: Any) -> str:
        values: dict[str, Any] = {"reconciliation_retry_base_seconds": 0.01, "reconciliation_retry_max_seconds": 0.2,
                                  "reconciliation_max_attempts": 4, **overrides}
        ctx = JobContext(dsn=dsn, settings=Settings(**values), worker="test")
        return run_provider_sync(ctx, now=now or datetime.now(UTC), orgs=list(orgs) or None)
    return run
