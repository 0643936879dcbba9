"""Analysts' SQL: `tokentra analysts create --org` makes a read-only login that sees its organization
only, every example in sql/ runs under it, and neither it nor a user of another organization can see
across the line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from analytics_fixtures import exact, get, ingest, traffic
from psycopg.rows import dict_row

from secret_registry import SECRETS_SEEN
from tokentra_core.db import connect
from tokentra_core.settings import REPO_ROOT

SQL_DIR = REPO_ROOT / "sql"


def create_analyst(dsn: str, org_id: str, made: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tokentra_cli.cli", "analysts", "create", "--org", org_id, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": dsn},
        check=True,
        cwd=REPO_ROOT,
    )
    role = json.loads(out.stdout)
    made.append(role["role"])
    SECRETS_SEEN.append(role["password"])
    return role


@pytest.fixture
def two_orgs_with_usage(functions_url, org_a, org_b):
    # distinct features per organization, so a leak would show as a foreign name
    ingest(
        functions_url,
        org_a,
        [
            dict(e, metadata={**e["metadata"], "feature": "a-" + e["metadata"]["feature"]})
            for e in traffic(n=40)
        ],
    )
    ingest(
        functions_url,
        org_b,
        [
            dict(e, metadata={**e["metadata"], "feature": "b-" + e["metadata"]["feature"]}, cached_tokens=100)
            for e in traffic(n=40, seed=1)
        ],
    )
    return org_a, org_b


def analyst_conn(role: dict) -> psycopg.Connection:
    return psycopg.connect(role["connection_string"], row_factory=dict_row, autocommit=True)


def test_create_prints_a_working_connection_string_once(dsn, org_b, analyst_roles):
    role = create_analyst(dsn, org_b.id, analyst_roles)
    assert role["connection_string"].startswith(f"postgresql://{role['role']}:")
    with analyst_conn(role) as conn:
        assert conn.execute("select current_user as u").fetchone()["u"] == role["role"]
        assert conn.execute("show statement_timeout").fetchone()["statement_timeout"] == "1min"
        assert (
            conn.execute("show default_transaction_read_only").fetchone()["default_transaction_read_only"]
            == "on"
        )
    # the password is not kept anywhere readable: only Postgres' own verifier exists
    with connect(dsn) as conn:
        row = conn.execute(
            "select * from private.analyst_roles where role_name = %s", (role["role"],)
        ).fetchone()
        assert str(row["org_id"]) == org_b.id and role["password"] not in json.dumps(row, default=str)


@pytest.mark.parametrize("query", sorted(p.name for p in SQL_DIR.glob("*.sql")))
def test_every_example_query_runs_as_an_analyst_and_sees_one_organization(
    dsn, two_orgs_with_usage, analyst_roles, query
):
    org_a, org_b = two_orgs_with_usage
    role = create_analyst(dsn, org_b.id, analyst_roles)
    with analyst_conn(role) as conn:
        rows = conn.execute((SQL_DIR / query).read_text()).fetchall()
    assert rows, f"{query} returned nothing for the analyst's organization"
    text = json.dumps(rows, default=str)
    assert "a-feature" not in text


def test_analyst_results_equal_raw_aggregates_of_their_organization(dsn, two_orgs_with_usage, analyst_roles):
    org_a, org_b = two_orgs_with_usage
    role = create_analyst(dsn, org_b.id, analyst_roles)
    with analyst_conn(role) as conn:
        got = {
            (r["day"], r["feature"]): r["cost_usd"]
            for r in conn.execute((SQL_DIR / "cost_per_feature_per_day.sql").read_text())
        }
    since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    with connect(dsn) as conn:
        expected = {
            (r["day"], r["feature"]): r["cost"]
            for r in conn.execute(
                "select (occurred_at at time zone 'UTC')::date as day, "
                "coalesce(feature, '(untagged)') as feature, coalesce(sum(cost_usd), 0) as cost "
                "from public.usage_records where org_id = %s and occurred_at >= %s "
                "group by 1, 2",
                (org_b.id, since),
            )
        }
    assert got == expected
    assert all(isinstance(v, Decimal) for v in got.values())


def test_an_analyst_sees_nothing_of_another_organization_and_cannot_write(
    dsn, two_orgs_with_usage, analyst_roles
):
    org_a, org_b = two_orgs_with_usage
    role = create_analyst(dsn, org_b.id, analyst_roles)
    with connect(dsn) as conn:
        owner_a = conn.execute(
            "select user_id from public.organization_members where org_id = %s and role = 'owner'",
            (org_a.id,),
        ).fetchone()["user_id"]
    with analyst_conn(role) as conn:
        for view in ("usage_records", "usage_hourly", "usage_daily", "end_user_daily", "end_user_monthly"):
            orgs = {str(r["org_id"]) for r in conn.execute(f"select distinct org_id from analytics.{view}")}
            assert orgs == {org_b.id}, view
        # the rollup tables and the raw table directly: the same policies
        for table in ("public.usage_records", "private.usage_rollup_daily", "private.usage_rollup_deltas"):
            assert (
                conn.execute(f"select count(*) as n from {table} where org_id = %s", (org_a.id,)).fetchone()[
                    "n"
                ]
                == 0
            )
        # forged JWT claims do not make the analyst a user: the policies key on the login, not on claims
        conn.execute(
            "select set_config('request.jwt.claims', %s, false)",
            (json.dumps({"sub": str(owner_a), "role": "authenticated"}),),
        )
        assert (
            conn.execute(
                "select count(*) as n from analytics.usage_records where org_id = %s", (org_a.id,)
            ).fetchone()["n"]
            == 0
        )
        for (stmt,) in [
            ("set role authenticated",),
            ("select * from public.organizations",),
            ("select * from public.api_keys",),
            ("select * from realtime.messages",),
            ("select * from auth.users",),
            ("select private.refresh_usage_rollups()",),
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(stmt)
        # writes fail even when the session leaves read-only mode: no grant, and no write policy
        conn.execute("set default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into public.usage_records (org_id, occurred_at, request_id, provider, model) "
                "values (%s, now(), 'x', 'p', 'm')",
                (org_b.id,),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from private.usage_rollup_daily")


def test_a_user_of_one_organization_sees_nothing_of_the_analysts_organization(
    functions_url, two_orgs_with_usage
):
    org_a, org_b = two_orgs_with_usage
    r = get(functions_url, "/costs", org_a.tokens["owner"], org_id=org_b.id, group_by="feature")
    assert r.status_code == 403 and "usage.read" in r.json()["message"], r.text  # refused, not answered empty
    features = {
        row["feature"]
        for row in exact(get(functions_url, "/costs", org_a.tokens["owner"], group_by="feature"))["data"]
    }
    assert features and all(f.startswith("a-") for f in features)


def test_the_timeout_watchdog_cancels_queries_that_outrun_their_limit(dsn, org_b, analyst_roles):
    role = create_analyst(dsn, org_b.id, analyst_roles)
    with connect(dsn) as conn:
        conn.execute(
            "update private.analyst_roles set statement_timeout = interval '1 second' where role_name = %s",
            (role["role"],),
        )
        conn.commit()
    cancelled: list[int] = []

    def watchdog() -> None:
        time.sleep(2)
        with connect(dsn) as conn:  # pg_cron runs it every minute with a minute's grace
            cancelled.append(
                conn.execute(
                    "select private.cancel_overrunning_analyst_queries(interval '0') as n"
                ).fetchone()["n"]
            )

    with analyst_conn(role) as conn:
        conn.execute("set statement_timeout = 0")  # a session may lift its own default ...
        t = threading.Thread(target=watchdog)
        t.start()
        with pytest.raises(psycopg.errors.QueryCanceled):  # ... the watchdog cancels it anyway
            conn.execute("select pg_sleep(30)")
        t.join()
    assert cancelled == [1]


def test_example_queries_are_documented():
    readme = (SQL_DIR / "README.md").read_text()
    for path in Path(SQL_DIR).glob("*.sql"):
        assert path.name in readme
        assert path.read_text().startswith("--"), f"{path.name} opens with a comment saying what it answers"
