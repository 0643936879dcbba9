"""Apply supabase/migrations in order and record them as the Supabase CLI does.

The CLI keeps `supabase_migrations.schema_migrations(version, statements, name)`, version being the
14-digit prefix of the file name; recording the same way means `supabase db push` and this runner
agree on what is applied. Each file runs in one transaction with its record, so a failing file leaves
the database as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tokentra_core.db import connect
from tokentra_core.settings import REPO_ROOT
from tokentra_core.sqlsplit import split_statements

MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
COMPAT_DIR = REPO_ROOT / "supabase" / "compat"
FILE_NAME = re.compile(r"^(\d{14})_(.+)\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


def discover(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql")
        found.append(Migration(match[1], match[2], path))
    return found


def _run_script(conn: psycopg.Connection, path: Path) -> list[str]:
    """Run a file statement by statement; an error names the file, line and statement."""
    statements = split_statements(path.read_text())
    for line, stmt in statements:
        try:
            conn.execute(stmt)
        except psycopg.Error as err:
            head = " ".join(stmt.split())[:100]
            raise MigrationError(
                f"{path.name}, statement at line {line} ({head}): {err.diag.message_primary}"
            ) from err
    return [stmt for _, stmt in statements]


def is_supabase(conn: psycopg.Connection) -> bool:
    """A real Supabase project has its own auth and realtime; the compat layer must never touch it."""
    row = conn.execute("select exists(select 1 from pg_roles where rolname = 'supabase_admin') as s").fetchone()
    return bool(row["s"])


def _ensure_record_table(conn: psycopg.Connection) -> None:
    conn.execute("create schema if not exists supabase_migrations")
    conn.execute(
        "create table if not exists supabase_migrations.schema_migrations "
        "(version text primary key, statements text[], name text)"
    )


def applied(conn: psycopg.Connection) -> set[str]:
    _ensure_record_table(conn)
    return {r["version"] for r in conn.execute("select version from supabase_migrations.schema_migrations")}


def apply_compat(conn: psycopg.Connection) -> bool:
    """Create the Supabase roles, auth and realtime stand-ins where the platform lacks them."""
    if is_supabase(conn):
        return False
    for path in sorted(COMPAT_DIR.glob("*.sql")):
        with conn.transaction():
            _run_script(conn, path)
    return True


def migrate(dsn: str | None = None, log=print, folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; return those applied."""
    done = []
    with connect(dsn, autocommit=True) as conn:
        # One migrator at a time: concurrent test sessions or CLI calls would otherwise race.
        conn.execute("select pg_advisory_lock(hashtext('tokentra.migrate'))")
        apply_compat(conn)
        seen = applied(conn)
        for mig in discover(folder):
            if mig.version in seen:
                continue
            with conn.transaction():
                statements = _run_script(conn, mig.path)
                conn.execute(
                    "insert into supabase_migrations.schema_migrations(version, statements, name) "
                    "values (%s, %s, %s)",
                    (mig.version, statements, mig.name),
                )
            log(f"applied {mig.path.name}")
            done.append(mig)
    return done
