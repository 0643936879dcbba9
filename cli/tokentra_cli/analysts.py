"""Analysts' SQL access: a read-only Postgres login role per organization.

The role sees that organization's rows through the analytics views and nothing else (RLS keyed on
the login's name, see supabase/migrations/20261122002400_analysts.sql), with a statement timeout.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel

from tokentra_core.settings import get_settings

__all__ = ["AnalystRole", "create", "drop"]


class AnalystRole(BaseModel):
    role: str
    org_id: UUID
    password: str
    connection_string: str


def connection_string(role: str, password: str, dsn: str | None = None) -> str:
    """The database URL an analyst connects with: the platform's host, port and database, their login."""
    params = conninfo_to_dict(dsn or get_settings().dsn)
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    dbname = quote(params.get("dbname", "postgres"))
    query = f"?sslmode={params['sslmode']}" if params.get("sslmode") else ""
    return f"postgresql://{quote(role)}:{quote(password, safe='')}@{host}:{port}/{dbname}{query}"


def create(
    conn: psycopg.Connection, org_id: UUID, timeout: timedelta = timedelta(seconds=60), dsn: str | None = None
) -> AnalystRole:
    """Create the login (the password exists only in the returned value); commits."""
    row = conn.execute(
        "select role_name, password from private.create_analyst_role(%s, %s)", (org_id, timeout)
    ).fetchone()
    conn.commit()
    return AnalystRole(
        role=row["role_name"],
        org_id=org_id,
        password=row["password"],
        connection_string=connection_string(row["role_name"], row["password"], dsn),
    )


def drop(conn: psycopg.Connection, role: str) -> bool:
    """End the role's sessions and drop it; False when it is not an analyst role."""
    found = conn.execute("select private.drop_analyst_role(%s) as dropped", (role,)).fetchone()["dropped"]
    conn.commit()
    return found
