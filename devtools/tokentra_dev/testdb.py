"""The tests' own database: a scratch database built from the migrations, never the one the demo and
users fill, so a test run neither depends on nor changes what that one holds.

A migrated and priced template is built once per set of migration files and prices
(`tokentra_test_tpl_<hash>`), and every run clones it (`CREATE DATABASE ... TEMPLATE`, about two seconds,
where migrating from scratch takes fifteen). Where the server does not let us create databases, the
tests run in the database they were given and `InPlace` removes the organizations and users they made.

    python -m tokentra_dev.testdb create [SERVER_DSN]   # prints the new database's DSN
    python -m tokentra_dev.testdb drop DSN
"""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlencode

import psycopg
from genai_prices import __version__ as genai_prices_version
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tokentra_core.db import connect
from tokentra_core.migrations import COMPAT_DIR, MIGRATIONS_DIR, migrate
from tokentra_core.pricing import sync_prices

__all__ = ["InPlace", "can_create_databases", "create", "drop", "with_dbname"]

PREFIX = "tokentra_test_"
TEMPLATE_PREFIX = "tokentra_test_tpl_"
STALE_SECONDS = 12 * 3600  # a run's database older than this with nobody connected was left by a killed run


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database, as a URL: pg_prove hands -d to psql split at
    spaces, so a key=value string would lose everything after its first pair."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    params.pop("dbname", None)
    auth = quote(params.pop("user", ""), safe="")
    if "password" in params:
        auth += ":" + quote(params.pop("password"), safe="")
    host = params.get("host", "")
    netloc = ""
    if host and "," not in host and not host.startswith("/"):  # a socket directory stays a query parameter
        netloc = params.pop("host") + (":" + params.pop("port") if "port" in params else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{auth + '@' if auth else ''}{netloc}/{quote(dbname, safe='')}{query}"


def dbname_of(dsn: str) -> str:
    return conninfo_to_dict(dsn).get("dbname") or "postgres"


def can_create_databases(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select rolsuper or rolcreatedb from pg_roles where rolname = current_user").fetchone()
    return bool(row and row[0])


def _fingerprint() -> str:
    """Changes whenever what a template holds would: a migration, the compat layer, the price data."""
    digest = hashlib.sha256(genai_prices_version.encode())
    for folder in (COMPAT_DIR, MIGRATIONS_DIR):
        for path in sorted(folder.glob("*.sql")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _databases(conn: psycopg.Connection, prefix: str) -> list[str]:
    rows = conn.execute("select datname from pg_database where datname like %s", (prefix + "%",)).fetchall()
    return [r[0] for r in rows]


def _drop_quietly(conn: psycopg.Connection, name: str) -> None:
    """Drop a database nobody is connected to; leave it when someone is (another run may use it)."""
    try:
        conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
    except psycopg.errors.ObjectInUse:
        pass


def _template(conn: psycopg.Connection, server: str, log) -> str:
    """The template for the current migrations and prices, built if it does not exist yet (call under the
    lock: one builder at a time, and no template is dropped while another run clones it)."""
    name = TEMPLATE_PREFIX + _fingerprint()
    existing = _databases(conn, TEMPLATE_PREFIX)
    for old in existing:
        if old != name:
            _drop_quietly(conn, old)
    if name in existing:
        return name
    building = f"{name}_build"
    # A build a killed run left half done; under the lock nobody else may be using it.
    conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(building)))
    conn.execute(sql.SQL("create database {}").format(sql.Identifier(building)))
    log(f"building the test template {name} (once per set of migrations)")
    target = with_dbname(server, building)
    migrate(target, log=lambda *_: None)
    with connect(target) as priced:
        sync_prices(priced)
        priced.commit()
    conn.execute(sql.SQL("alter database {} rename to {}").format(sql.Identifier(building), sql.Identifier(name)))
    # TimescaleDB's scheduler connects to every database with the extension, and CREATE DATABASE ... TEMPLATE
    # refuses a template anyone is connected to: a template that takes no connections keeps it away.
    conn.execute(sql.SQL("alter database {} with allow_connections false").format(sql.Identifier(name)))
    return name


def _clone(conn: psycopg.Connection, name: str, template: str) -> None:
    """CREATE DATABASE name TEMPLATE template, after ending background workers still connected to the
    template (TimescaleDB's scheduler); retried briefly, since one may reconnect in between."""
    for attempt in range(10):
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                     "where datname = %s and backend_type like 'TimescaleDB%%'", (template,))
        try:
            conn.execute(sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)))
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 9:
                raise
            time.sleep(0.5)


def create(server: str, log=lambda *_: None) -> str:
    """A new database cloned from the current template on the server of `server`; returns its DSN."""
    name = f"{PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        for old in _databases(conn, PREFIX):
            stamp = old.removeprefix(PREFIX).split("_")[0]
            if stamp.isdigit() and time.time() - int(stamp) > STALE_SECONDS:
                _drop_quietly(conn, old)
        conn.execute("select pg_advisory_lock(hashtext('tokentra.test-template'))")
        try:
            template = _template(conn, server, log)
            _clone(conn, name, template)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('tokentra.test-template'))")
    return with_dbname(server, name)


def drop(dsn: str) -> None:
    """Drop a database `create` made (ending any session still in it)."""
    name = dbname_of(dsn)
    if not name.startswith(PREFIX) or name.startswith(TEMPLATE_PREFIX):
        raise ValueError(f"{name} is not a test database")
    with psycopg.connect(with_dbname(dsn, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@dataclass
class InPlace:
    """Tests running in a database they may not replace: remember what was there, remove what they add."""

    dsn: str
    started: datetime = field(default_factory=datetime.now)
    orgs: set = field(default_factory=set)
    users: set = field(default_factory=set)

    def __post_init__(self) -> None:
        with connect(self.dsn) as conn:
            self.started = conn.execute("select now() as t").fetchone()["t"]
            self.orgs = {r["id"] for r in conn.execute("select id from public.organizations")}
            self.users = {r["id"] for r in conn.execute("select id from auth.users")}

    def clean(self) -> int:
        """Delete the organizations (their rows go with them) and users created since; returns how many orgs."""
        with connect(self.dsn, autocommit=True) as conn:
            made = [r["id"] for r in conn.execute("select id from public.organizations where created_at >= %s",
                                                  (self.started,)) if r["id"] not in self.orgs]
            for role in conn.execute("select role_name from private.analyst_roles where org_id = any(%s)",
                                     (made,)).fetchall():
                conn.execute("select private.drop_analyst_role(%s)", (role["role_name"],))
            conn.execute("delete from public.organizations where id = any(%s)", (made,))
            users = [r["id"] for r in conn.execute("select id from auth.users where created_at >= %s",
                                                   (self.started,)) if r["id"] not in self.users]
            conn.execute("delete from auth.users where id = any(%s)", (users,))
        return len(made)


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "create":
        from tokentra_core.settings import get_settings

        server = argv[1] if len(argv) > 1 else get_settings().dsn
        print(create(server, log=lambda m: print(m, file=sys.stderr)))
        return 0
    if len(argv) == 2 and argv[0] == "drop":
        drop(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
