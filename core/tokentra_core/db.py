"""Connections to Postgres. prepare_threshold=None everywhere: Supabase's transaction pooler
(Supavisor in transaction mode) cannot keep server-side prepared statements."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from tokentra_core.settings import get_settings


def connect(dsn: str | None = None, **kw) -> psycopg.Connection:
    return psycopg.connect(dsn or get_settings().dsn, prepare_threshold=None, row_factory=dict_row, **kw)
