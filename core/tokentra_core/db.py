"""Connections to Postgres. prepare_threshold=None everywhere: Supabase's transaction pooler
(Supavisor in transaction mode) cannot keep server-side prepared statements."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from tokentra_core.settings import get_settings


def connect(dsn: str | None = None, **kw: Any) -> psycopg.Connection[DictRow]:
    return psycopg.connect(dsn or get_settings().dsn, prepare_threshold=None, row_factory=dict_row, **kw)


def analyst_connection_string(role: str, password: str, dsn: str | None = None) -> str:
    """The database URL an analyst connects with: the platform's host, port and database, their login."""
    params = conninfo_to_dict(dsn or get_settings().dsn)
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    dbname = quote(params.get("dbname", "postgres"))
    query = f"?sslmode={params['sslmode']}" if params.get("sslmode") else ""
    return f"postgresql://{quote(role)}:{quote(password, safe='')}@{host}:{port}/{dbname}{query}"
