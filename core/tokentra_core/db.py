"""Connections to Postgres. prepare_threshold=None everywhere: Supabase's transaction pooler
(Supavisor in transaction mode) cannot keep server-side prepared statements."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from tokentra_core.settings import get_settings

# Every connection of ours returns rows as dicts.
Conn = psycopg.Connection[DictRow]
AsyncConn = psycopg.AsyncConnection[DictRow]


R = TypeVar("R")


def one(cur: psycopg.Cursor[R]) -> R:
    """The row of a query that always returns exactly one (an aggregate, a function call, an insert ...
    returning); its absence is a bug worth a clear error, not a TypeError on None."""
    row = cur.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row


async def one_async(cur: psycopg.AsyncCursor[R]) -> R:
    """`one` for async cursors."""
    row = await cur.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row


def connect(dsn: str | None = None, **kw: Any) -> Conn:
    return psycopg.connect(dsn or get_settings().dsn, prepare_threshold=None, row_factory=dict_row, **kw)


def analyst_connection_string(role: str, password: str, dsn: str | None = None) -> str:
    """The database URL an analyst connects with: the platform's host, port and database, their login."""
    params = conninfo_to_dict(dsn or get_settings().dsn)
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    dbname = quote(str(params.get("dbname") or "postgres"))
    query = f"?sslmode={params['sslmode']}" if params.get("sslmode") else ""
    return f"postgresql://{quote(role)}:{quote(password, safe='')}@{host}:{port}/{dbname}{query}"
