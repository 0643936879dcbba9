"""Shared fixtures: every test runs against the real Postgres the project provisions (or DATABASE_URL), in a
database of its own: ./scripts/test passes one in TOKENTRA_TEST_DATABASE_URL; a plain `pytest` clones one from
the migrated template (tokentra_dev.testdb) and drops it at the end. Only where the server refuses to create
databases do the tests run in DATABASE_URL's own database, and then they remove what they created."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from secret_registry import SECRETS_SEEN
from tokentra_cli import admin
from tokentra_cli.functions_server import free_port, start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.migrations import migrate
from tokentra_core.settings import Settings, get_settings
from tokentra_dev.testing.llm_servers import Answer, LLMServers, SeenRequest

_RUN: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Point every test, and every process they start, at the tests' own database (DATABASE_URL)."""
    if config.option.help or config.option.collectonly:
        return
    from tokentra_dev import testdb

    user = get_settings()
    if user.uses_local_db:  # tests of the embedded database itself still look at the user's server
        os.environ["TOKENTRA_TESTS_LOCAL_DB"] = "1"
    if os.environ.get("TOKENTRA_TEST_DATABASE_URL"):
        target = os.environ["TOKENTRA_TEST_DATABASE_URL"]
    elif testdb.can_create_databases(user.dsn):
        target = testdb.create(user.dsn)
        _RUN["created"] = target
    else:
        target = user.dsn
        migrate(target, log=lambda *_: None)
        _RUN["in_place"] = testdb.InPlace(target)
    if os.environ.get("TOKENTRA_TEST_POOLER") == "1":
        # Behind PgBouncer in transaction mode, as Supabase's pooler runs: the server, the worker and the
        # tests' own connections go through it; migrations go direct (pooler.direct).
        from tokentra_dev.pooler import DIRECT_ENV, PgBouncer

        pooler = PgBouncer(target)
        _RUN["pooler"] = pooler
        os.environ[DIRECT_ENV] = target
        target = pooler.__enter__()
    os.environ["DATABASE_URL"] = target
    get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    from tokentra_dev import testdb
    from tokentra_dev.pooler import PgBouncer

    if isinstance(pooler := _RUN.pop("pooler", None), PgBouncer):
        pooler.__exit__()
    if isinstance(created := _RUN.pop("created", None), str):
        testdb.drop(created)
    if isinstance(in_place := _RUN.pop("in_place", None), testdb.InPlace):
        in_place.clean()


@pytest.fixture(scope="session")
def dsn() -> str:
    from tokentra_dev.pooler import direct

    settings = get_settings()
    migrate(direct(settings.dsn), log=lambda *_: None)  # idempotent: ./scripts/test already migrated
    return settings.dsn


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back at the end: each test sees only its own rows."""
    with connect(dsn) as conn:
        yield conn
        conn.rollback()


@pytest.fixture(scope="session")
def functions_url(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real functions server (`tokentra serve`) on a free port; its log is kept for secret checks."""
    log_path = tmp_path_factory.mktemp("functions") / "server.log"
    with open(log_path, "w") as log:
        proc, url = start_functions(free_port(), env={"DATABASE_URL": dsn}, log=log, log_level="info")
        yield url
        stop_functions(proc)
    # No API key or planted prompt text may ever reach the server's log.
    text = log_path.read_text()
    leaked = [s[:12] + "..." for s in SECRETS_SEEN if s in text]
    assert not leaked, f"secrets found in the functions log {log_path}: {leaked}"


@dataclass
class Tenant:
    org_id: str
    key: str
    key_id: str


@pytest.fixture
def tenant(dsn: str) -> Tenant:
    """A committed organization with a live API key, fresh for each test."""
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"test-{uuid.uuid4().hex[:8]}")
        key = admin.create_key(conn, org.id)
    SECRETS_SEEN.append(key.key)
    return Tenant(str(org.id), key.key, str(key.id))


@pytest.fixture
def scratch_dsn(dsn: str) -> Iterator[str]:
    """A new, empty database on the same server, dropped afterwards. pg_cron lives only in the database
    named by cron.database_name, so a scratch database is also a platform without pg_cron."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"tokentra_scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield make_conninfo(**{**conninfo_to_dict(dsn), "dbname": name})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'drop database "{name}" with (force)')


class Servers:
    """Scripted OpenAI/Anthropic servers (tokentra_dev.testing.llm_servers) whose script a test sets;
    until it does, every request fails with 500."""

    def __init__(self) -> None:
        self.script: Callable[[SeenRequest], Answer] = lambda seen: Answer.error(500)
        self.inner = LLMServers(lambda seen: self.script(seen))

    @property
    def seen(self) -> list[SeenRequest]:
        return self.inner.seen


@pytest.fixture
def servers() -> Iterator[Servers]:
    from tokentra_core.llm import _ledger

    s = Servers()
    with s.inner:
        env = s.inner.env()
        SECRETS_SEEN.extend([env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"]])
        yield s
    # The internal ingest key the LLM layer minted is a secret like any other.
    SECRETS_SEEN.extend(key.get_secret_value() for key, _ in _ledger._KEYS.values())


@pytest.fixture
def llm_settings(servers: Servers, functions_url: str) -> Callable[..., Settings]:
    """Settings with both providers at the scripted servers and TokenTRA's own usage sent to the real ingest."""
    def make(**overrides: object) -> Settings:
        values = {**servers.inner.env(), "llm_ingest_url": f"{functions_url}/ingest", "llm_timeout_seconds": 5,
                  **overrides}
        return Settings(**values)
    return make
