"""Apply supabase/migrations in order and record them as the Supabase CLI does.

The CLI keeps `supabase_migrations.schema_migrations(version, statements, name)`, version being the
14-digit prefix of the file name; recording the same way means `supabase db push` and this runner
agree on what is applied. Each file runs in one transaction with its record, so a failing file leaves
the database as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tokentra_core.db import Conn, connect, one
from tokentra_core.settings import REPO_ROOT
from tokentra_core.sqlsplit import split_statements

MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
# sha256sum's format, so `cd supabase && sha256sum -c migrations.sha256` checks it too.
MANIFEST = REPO_ROOT / "supabase" / "migrations.sha256"
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


def _run_script(conn: Conn, path: Path) -> list[str]:
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


def is_supabase(conn: Conn) -> bool:
    """A real Supabase project has its own auth and realtime; the compat layer must never touch it."""
    row = one(conn.execute("select exists(select 1 from pg_roles where rolname = 'supabase_admin') as s"))
    return bool(row["s"])


def _ensure_record_table(conn: Conn) -> None:
    conn.execute("create schema if not exists supabase_migrations")
    conn.execute(
        "create table if not exists supabase_migrations.schema_migrations "
        "(version text primary key, statements text[], name text)"
    )


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(manifest: Path = MANIFEST) -> dict[str, str]:
    """File name -> recorded sha256 of every migration that has been committed."""
    if not manifest.exists():
        return {}
    entries = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[Path(name).name] = digest
    return entries


def manifest_problems(folder: Path = MIGRATIONS_DIR, manifest: Path = MANIFEST) -> list[str]:
    """Why the migration files and the manifest disagree: a recorded file that changed or vanished, or a
    file not recorded yet. Empty when they agree."""
    recorded = read_manifest(manifest)
    files = {m.path.name: m.path for m in discover(folder)}
    problems = []
    for name, digest in recorded.items():
        if name not in files:
            problems.append(f"{name} is recorded in {manifest.name} but missing: a landed migration is never removed")
        elif checksum(files[name]) != digest:
            problems.append(f"{name} changed after it was recorded: a landed migration is never edited; restore it "
                            "and put the change in a new migration")
    problems += [f"{name} is not recorded yet: run `tokentra db manifest` and commit {manifest.name} with it"
                 for name in files if name not in recorded]
    return problems


def record_manifest(folder: Path = MIGRATIONS_DIR, manifest: Path = MANIFEST) -> list[str]:
    """Add the files not recorded yet; never rewrite a recorded line. Return the names added."""
    recorded = read_manifest(manifest)
    changed = [p for p in manifest_problems(folder, manifest) if "not recorded yet" not in p]
    if changed:
        raise MigrationError("; ".join(changed))
    added = [m for m in discover(folder) if m.path.name not in recorded]
    with manifest.open("a") as out:
        for mig in added:
            out.write(f"{checksum(mig.path)}  migrations/{mig.path.name}\n")
    return [m.path.name for m in added]


def _check_applied_unchanged(conn: Conn, migrations: list[Migration]) -> None:
    """Refuse a database whose applied statements differ from the files: the database would never learn of
    an edit to a migration it has applied, and would silently drift from the repository."""
    stored = {r["version"]: r["statements"] for r in conn.execute(
        "select version, statements from supabase_migrations.schema_migrations")}
    for mig in migrations:
        statements = stored.get(mig.version)
        if statements is not None and statements != [s for _, s in split_statements(mig.path.read_text())]:
            raise MigrationError(
                f"{mig.path.name} differs from what this database applied as version {mig.version}: a migration "
                "is never edited once applied; restore the file and put the change in a new migration"
            )


def applied(conn: Conn) -> set[str]:
    _ensure_record_table(conn)
    return {r["version"] for r in conn.execute("select version from supabase_migrations.schema_migrations")}


def apply_compat(conn: Conn) -> bool:
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
        migrations = discover(folder)
        _check_applied_unchanged(conn, migrations)
        for mig in migrations:
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
