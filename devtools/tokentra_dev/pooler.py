"""PgBouncer (Debian's package) in transaction mode in front of a database, as Supabase's pooler runs, so
tests can run the functions and the worker through it.

In transaction mode every transaction may run on another server connection: session state (SET without
LOCAL, session advisory locks, LISTEN, prepared statements) does not survive from one to the next. The
migration runner holds a session advisory lock, so migrations go to the database directly
(`direct()` maps a pooled DSN back); everything else runs through the pooler.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["PgBouncer", "direct"]

DIRECT_ENV = "TOKENTRA_TEST_DIRECT_DATABASE_URL"  # the pooled server's direct DSN, for direct()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def direct(dsn: str) -> str:
    """The same database, reached without the pooler (for migrations); dsn itself when none runs."""
    target = os.environ.get(DIRECT_ENV)
    if not target:
        return dsn
    params, server = conninfo_to_dict(dsn), conninfo_to_dict(target)
    if str(params.get("port")) == str(server.get("port")):
        return dsn
    return make_conninfo(**{**params, "host": server.get("host", "127.0.0.1"), "port": server.get("port", "5432")})


class PgBouncer:
    """`with PgBouncer(dsn) as pooled:` a transaction-mode pooler for dsn's server, every database on it."""

    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.proc: subprocess.Popen | None = None
        self.folder: Path | None = None

    def __enter__(self) -> str:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer is missing; run ./scripts/setup (it installs Debian's package)")
        params = conninfo_to_dict(self.dsn)
        user, password = params.get("user", "postgres"), params.get("password", "")
        port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tokentra-pgbouncer-"))
        (self.folder / "userlist.txt").write_text(f'"{user}" "{password}"\n')
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={params.get('host', '127.0.0.1')} port={params.get('port', '5432')}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self.folder / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            # psycopg's startup parameters; the pooler does not keep them per client anyway.
            "ignore_startup_parameters = extra_float_digits,options,application_name\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n")
        if os.geteuid() == 0:  # the postgres user it drops to reads its files and writes its log
            for path in (self.folder, *self.folder.iterdir()):
                shutil.chown(path, "postgres", "postgres")
        # pgbouncer refuses to run as root; -u drops to the postgres user.
        command = [binary, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(self.folder / "pgbouncer.ini")]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return make_conninfo(**{**params, "host": "127.0.0.1", "port": str(port)})
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"pgbouncer did not start; see {self.folder / 'pgbouncer.log'}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
