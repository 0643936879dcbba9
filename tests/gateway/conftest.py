"""The gateway under test: the real functions server (its own process, so its settings can be tightened)
in front of a local provider that speaks OpenAI's and Anthropic's wire formats; an organization whose
provider connections point at that provider, and virtual keys made by the SQL the CLI and API call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from gateway_helpers import LOOP_LIMIT, TIMEOUT_SECONDS

from secret_registry import SECRETS_SEEN
from tokentra_cli import admin
from tokentra_cli.functions_server import free_port, start_functions
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_dev.testing.gateway_upstream import ANTHROPIC_KEY, PROVIDER_KEY, UpstreamServer


@pytest.fixture(scope="session")
def upstream() -> Iterator[UpstreamServer]:
    SECRETS_SEEN.extend([PROVIDER_KEY, ANTHROPIC_KEY])
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="session")
def gateway_log(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tmp_path_factory.mktemp("gateway") / "server.log"


@pytest.fixture(scope="session")
def gateway_url(dsn: str, upstream: UpstreamServer, gateway_log: Any) -> Iterator[str]:
    """`tokentra serve` with a short upstream timeout and a low loop limit; its log is checked for secrets."""
    with open(gateway_log, "w") as log:
        proc, url = start_functions(free_port(), env={
            "DATABASE_URL": dsn, "TOKENTRA_GATEWAY_LOOP_LIMIT": str(LOOP_LIMIT),
            "TOKENTRA_GATEWAY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "TOKENTRA_GATEWAY_CREDENTIALS_SECONDS": "0",
            # 100 reservations on one budget queue one at a time; on a busy machine that takes minutes.
            "TOKENTRA_GATEWAY_POLICY_WAIT_SECONDS": "900"}, log=log, log_level="info")
        yield url + "/gateway"
        # The server drains its usage writer before it exits, which can outlast stop_functions' wait.
        proc.terminate()
        proc.wait(120)
    text = gateway_log.read_text()
    leaked = [s[:12] + "..." for s in SECRETS_SEEN if s in text]
    assert not leaked, f"secrets found in the gateway's log {gateway_log}: {leaked}"


@dataclass
class GatewayOrg:
    dsn: str
    org_id: uuid.UUID
    keys: dict[str, uuid.UUID] = field(default_factory=dict)  # virtual key -> id

    def key(self, **policy: Any) -> str:
        """A virtual key with this policy (new_virtual_key's arguments)."""
        with connect(self.dsn, autocommit=True) as conn:
            row = conn.execute(
                "select * from private.new_virtual_key(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (self.org_id, policy.get("name", "test"), policy.get("team"), policy.get("project"),
                 policy.get("end_user_id"), policy.get("budget"), policy.get("period", "monthly"),
                 policy.get("hard_limit", True), policy.get("rpm"), policy.get("tpm"), policy.get("models"),
                 policy.get("providers"), policy.get("expires"))).fetchone()
        SECRETS_SEEN.append(row["key"])
        self.keys[row["key"]] = row["id"]
        return row["key"]

    def usage(self, key: str, expect: int, timeout: float = 10.0, **where: Any) -> list[dict[str, Any]]:
        """The usage rows of a key once `expect` of them are stored (the writer runs after the answer), in the
        order the calls started (one write may store several calls at the same received_at)."""
        deadline = time.monotonic() + timeout
        clause = "".join(f" and {k} = %s" for k in where)
        while True:
            with connect(self.dsn, autocommit=True) as conn:
                rows = conn.execute(f"select * from public.usage_records where org_id = %s and api_key_id = %s{clause} "
                                    "order by occurred_at, received_at, id",
                                    (self.org_id, self.keys[key], *where.values())).fetchall()
            if len(rows) >= expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def calls(self, expect: int, key: str | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The reservations of the organization's gateway calls (of one key's, with `key`) once `expect` of them
        are closed: the usage writer closes each right after storing its usage."""
        deadline = time.monotonic() + timeout
        query = "select * from private.budget_reservations where org_id = %s and kind = 'call'"
        args: list[Any] = [self.org_id]
        if key is not None:
            query += " and api_key_id = %s"
            args.append(self.keys[key])
        while True:
            rows = self.sql(query, *args)
            if sum(r["status"] != "open" for r in rows) >= expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def sql(self, query: str, *args: Any) -> list[dict[str, Any]]:
        with connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(query, args)
            return cur.fetchall() if cur.description else []


@pytest.fixture
def gw(dsn: str, upstream: UpstreamServer) -> GatewayOrg:
    """A fresh organization with an OpenAI and an Anthropic connection to the local provider."""
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"gateway-{uuid.uuid4().hex[:8]}")
        store_provider_connection(conn, org.id, "openai", PROVIDER_KEY, base_url=upstream.url + "/v1")
        store_provider_connection(conn, org.id, "anthropic", ANTHROPIC_KEY, base_url=upstream.url)
    return GatewayOrg(dsn, org.id)


@pytest.fixture
def openai_client(gateway_url: str) -> Iterator[Callable[..., Any]]:
    """Makes official OpenAI clients pointed at the gateway; the synchronous ones are closed afterwards."""
    made: list[Any] = []

    def make(key: str, asynchronous: bool = False, **kw: Any) -> Any:
        import openai

        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        client = cls(api_key=key, base_url=gateway_url + "/openai/v1", **kw)
        if not asynchronous:
            made.append(client)
        return client
    yield make
    for client in made:
        client.close()


@pytest.fixture
def anthropic_client(gateway_url: str) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(key: str, asynchronous: bool = False, **kw: Any) -> Any:
        import anthropic

        cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
        client = cls(api_key=key, base_url=gateway_url + "/anthropic", **kw)
        if not asynchronous:
            made.append(client)
        return client
    yield make
    for client in made:
        client.close()


def cost_of(rows: list[dict[str, Any]]) -> Decimal:
    return sum((r["cost_usd"] or Decimal(0) for r in rows), Decimal(0))


__all__ = ["GatewayOrg", "cost_of", "psycopg"]
