"""What the database platform chose, and why: printed by `tokentra db status`."""

from __future__ import annotations

from typing import Any, LiteralString

from pydantic import BaseModel

from tokentra_core.db import Conn
from tokentra_core.db import one as db_one


class PlatformStatus(BaseModel):
    server_version: str
    supabase: bool
    usage_layout: str | None
    usage_layout_reason: str | None
    timescaledb_license: str | None
    periodic_jobs: str
    secrets: str
    migrations_applied: int
    # LLM features: on when a provider key is configured; {"enabled", "providers", "reason"}.
    llm: dict = {}


def read_status(conn: Conn) -> PlatformStatus:
    def one(query: LiteralString) -> dict[str, Any]:
        return db_one(conn.execute(query))

    version = one("select current_setting('server_version') as v")["v"]
    exts = {r["extname"] for r in conn.execute("select extname from pg_extension")}
    has_layout = one("select to_regclass('private.usage_layout') is not null as t")["t"]
    layout = conn.execute("select kind, reason from private.usage_layout").fetchone() if has_layout else None
    supabase = one("select exists(select 1 from pg_roles where rolname = 'supabase_admin') as s")["s"]
    vault = one("select exists(select 1 from pg_namespace where nspname = 'vault') as v")["v"]
    has_record = one("select to_regclass('supabase_migrations.schema_migrations') is not null as t")["t"]
    applied = one("select count(*) as n from supabase_migrations.schema_migrations")["n"] if has_record else 0
    return PlatformStatus(
        server_version=version,
        supabase=supabase,
        usage_layout=layout["kind"] if layout else None,
        usage_layout_reason=layout["reason"] if layout else None,
        timescaledb_license=(
            one("select current_setting('timescaledb.license', true) as l")["l"] if "timescaledb" in exts else None
        ),
        periodic_jobs=(
            "pg_cron: periodic SQL runs as cron jobs" if "pg_cron" in exts
            else "worker: pg_cron is absent here, so `tokentra worker` runs the periodic SQL"
        ),
        secrets=(
            "Supabase Vault" if vault
            else "envelope encryption (AES-256-GCM data keys wrapped by TOKENTRA_SECRET_KEY); Vault is absent"
        ),
        migrations_applied=applied,
        llm=_llm_status(),
    )


def _llm_status() -> dict:
    from tokentra_core.llm_status import llm_status
    from tokentra_core.settings import get_settings

    return llm_status(get_settings())
