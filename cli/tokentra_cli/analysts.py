"""Analysts' SQL access: a read-only Postgres login role per organization.

The role sees that organization's rows through the analytics views and nothing else (RLS keyed on
the login's name, see supabase/migrations/20261122002400_analysts.sql), with a statement timeout.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel

from tokentra_core.db import Conn, one
from tokentra_core.db import analyst_connection_string as connection_string

__all__ = ["AnalystRole", "create", "drop"]


class AnalystRole(BaseModel):
    role: str
    org_id: UUID
    password: str
    connection_string: str


def create(
    conn: Conn, org_id: UUID, timeout: timedelta = timedelta(seconds=60), dsn: str | None = None
) -> AnalystRole:
    """Create the login (the password exists only in the returned value); commits."""
    row = one(conn.execute(
        "select role_name, password from private.create_analyst_role(%s, %s)", (org_id, timeout)
    ))
    conn.commit()
    return AnalystRole(
        role=row["role_name"],
        org_id=org_id,
        password=row["password"],
        connection_string=connection_string(row["role_name"], row["password"], dsn),
    )


def drop(conn: Conn, role: str) -> bool:
    """End the role's sessions and drop it; False when it is not an analyst role."""
    found = one(conn.execute("select private.drop_analyst_role(%s) as dropped", (role,)))["dropped"]
    conn.commit()
    return found
