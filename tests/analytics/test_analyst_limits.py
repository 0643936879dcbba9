"""An analyst login cannot keep loosened limits: whatever it stores for itself, its next connection runs
with the statement timeout, read-only mode and a temp-file bound it cannot raise, and it creates no tables."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row
from test_analysts import create_analyst

from tokentra_core.db import connect

LOOSEN = [
    "begin read write",
    "alter role current_user set statement_timeout = 0",
    "alter role current_user set default_transaction_read_only = off",
    "alter role current_user set work_mem = '1GB'",
    "commit",
]


def _limits(conn: psycopg.Connection) -> dict[str, str]:
    return {name: conn.execute(f"show {name}").fetchone()[name]
            for name in ("statement_timeout", "default_transaction_read_only", "temp_file_limit", "work_mem")}


def _connect(role: dict) -> psycopg.Connection:
    return psycopg.connect(role["connection_string"], row_factory=dict_row, autocommit=True)


@pytest.mark.parametrize("statements", [LOOSEN, LOOSEN[:2] + LOOSEN[-1:]], ids=["everything", "timeout-only"])
def test_loosened_limits_do_not_reach_the_next_connection(dsn, org_a, analyst_roles, statements):
    role = create_analyst(dsn, org_a.id, analyst_roles)
    with _connect(role) as conn:
        for sql in statements:  # Postgres lets a role store its own user-settable defaults
            conn.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set temp_file_limit = -1")  # a superuser parameter: not the analyst's to raise
    with _connect(role) as conn:
        limits = _limits(conn)
        assert limits["statement_timeout"] == "1min" and limits["default_transaction_read_only"] == "on"
        assert limits["temp_file_limit"] == "1GB"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("begin read write; create temp table scratch (x int)")
    # the stored defaults are the limits again: at login where the loosened ones left the login writable,
    # else by the minute job
    with connect(dsn) as admin:
        admin.execute("select private.enforce_analyst_settings(%s)", (role["role"],))
        stored = admin.execute("select setconfig from pg_db_role_setting where setrole = %s::regrole and "
                               "setdatabase = 0", (role["role"],)).fetchone()["setconfig"]
        admin.commit()
    assert "statement_timeout=60000" in stored and "default_transaction_read_only=on" in stored
    assert not any(s.startswith("work_mem") for s in stored)
