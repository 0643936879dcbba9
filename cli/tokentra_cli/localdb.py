"""The embedded local database: Postgres 17 and its extensions from Debian trixie, in a chroot.

The host is Debian bookworm, whose Postgres lacks pgvector and timescaledb; trixie's packages have
them but need trixie's libc. debootstrap gives us a trixie root in a cache folder without touching the
host's libraries, and Postgres runs inside it (chroot) listening on 127.0.0.1:54322, the port and
credentials `supabase start` uses.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tokentra_core.settings import Settings, get_settings

PG_MAJOR = 17
PACKAGES = [
    f"postgresql-{PG_MAJOR}",
    f"postgresql-{PG_MAJOR}-pgvector",
    f"postgresql-{PG_MAJOR}-cron",
    f"postgresql-{PG_MAJOR}-partman",
    f"postgresql-{PG_MAJOR}-timescaledb",
    f"postgresql-{PG_MAJOR}-pgtap",
]
DATA_DIR = "/pgdata"  # inside the chroot
BIN = f"/usr/lib/postgresql/{PG_MAJOR}/bin"
# Bumped when the package list changes, so cached roots are rebuilt (settings are reconciled at each start).
ROOT_VERSION = "1"

SERVER_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '/tmp'
shared_preload_libraries = 'pg_cron,timescaledb'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 32
timescaledb.telemetry_level = off
wal_level = logical
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = '{shared_buffers}'
max_connections = 200
"""
# fsync off: this server holds development and test data only; a crash costs a `tokentra db reset`.
AUTO_CONF = "postgresql.auto.conf"
_SETTING = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*?)\s*$")


def memory_bytes(meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup/memory.max")) -> int:
    """The memory this machine (or its container's limit, when lower) gives us."""
    total = 0
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    try:
        limit = cgroup.read_text().strip()
    except OSError:
        limit = "max"
    return min(total, int(limit)) if limit.isdigit() else total


def shared_buffers_mb(memory: int) -> int:
    """A quarter of memory, the usual start for a server of its own, between 512 MB and 8 GB: the
    semantic cache's graphs are read at random, and a page not in shared buffers costs a read per hop."""
    return max(512, min(8192, memory // 4 // 2**20))


def server_conf(port: int, memory: int | None = None) -> dict[str, str]:
    """The settings the local server runs with, by name, as they are written in its conf file."""
    buffers = shared_buffers_mb(memory_bytes() if memory is None else memory)
    text = SERVER_CONF.format(port=port, shared_buffers=f"{buffers}MB")
    return {m[1]: m[2] for m in map(_SETTING.match, text.splitlines()) if m}


def reconcile_conf(data: Path, wanted: dict[str, str]) -> list[str]:
    """Bring the data folder's auto.conf to the wanted settings, keeping anything else it holds (ALTER
    SYSTEM by hand); returns the names that changed, and writes nothing when none did."""
    path = data / AUTO_CONF
    lines = path.read_text().splitlines() if path.exists() else []
    changed: list[str] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        m = _SETTING.match(line)
        if m and m[1] in wanted:
            seen.add(m[1])
            if m[2] != wanted[m[1]]:
                lines[i] = f"{m[1]} = {wanted[m[1]]}"
                changed.append(m[1])
    for name, value in wanted.items():
        if name not in seen:
            lines.append(f"{name} = {value}")
            changed.append(name)
    if changed:
        # Written beside and renamed over, owned like the folder: the server may read it at any moment.
        tmp = data / (AUTO_CONF + ".tokentra")
        tmp.write_text("\n".join(lines) + "\n")
        st = data.stat()
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return changed


class SetupError(RuntimeError):
    """A set-up step failed; the message says what and what to do."""


@dataclass
class Status:
    provisioned: bool
    initialized: bool
    running: bool
    root: Path


def root_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.home / f"pg{PG_MAJOR}-trixie"


def _marker(root: Path) -> Path:
    return root / ".tokentra-complete"


APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def debian_mirror(settings: Settings, sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror to debootstrap from: the setting, else the host's own apt sources."""
    if settings.debian_mirror:
        return settings.debian_mirror
    # The host's own apt sources name the mirror this machine may reach (comments are not sources).
    for path in sources:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if line.startswith("URIs:") or line.startswith("deb "):
                for uri in line.split()[1:]:
                    if re.match(r"https?://\S+/debian/?$", uri):
                        return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _run(cmd: list[str], what: str, fix: str, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # noqa: S603 - argv built here from fixed commands, no shell
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SetupError(f"{what} failed ({tail[0]}); {fix}")
    return proc


def provision(settings: Settings | None = None, log=print) -> Path:
    """Build the trixie root with Postgres and its extensions once; later calls return at once."""
    settings = settings or get_settings()
    root = root_dir(settings)
    if _marker(root).exists() and _marker(root).read_text().strip() == ROOT_VERSION:
        return root
    if os.geteuid() != 0:
        raise SetupError("provisioning the local database needs root (debootstrap, chroot)")
    if not shutil.which("debootstrap"):
        raise SetupError("debootstrap is missing; run ./scripts/setup, or apt-get install debootstrap")
    free = shutil.disk_usage(settings.home if settings.home.exists() else Path.home()).free
    if free < 2 * 1024**3:
        raise SetupError(f"only {free // 2**20} MiB free under {settings.home}; free 2 GiB and rerun")
    partial = root.with_name(root.name + ".partial")
    if partial.exists():  # an interrupted run: start that folder again, nothing else depends on it
        _unmount(partial)
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log(f"Provisioning Postgres {PG_MAJOR} with extensions into {root} (about a minute, once)...")
    _run(
        ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), "trixie", str(partial),
         debian_mirror(settings)],
        "debootstrap of Debian trixie",
        "check that the Debian mirror is reachable (TOKENTRA_DEBIAN_MIRROR overrides it) and rerun",
    )
    if root.exists():
        _unmount(root)
        shutil.rmtree(root)
    partial.rename(root)
    _marker(root).write_text(ROOT_VERSION + "\n")
    return root


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def _unmount(root: Path) -> None:
    proc = root / "proc"
    if proc.exists() and _mounted(proc):
        subprocess.run(["umount", "-l", str(proc)], check=False)  # noqa: S603, S607 - the system umount, no shell


def _ensure_proc(root: Path) -> None:
    proc = root / "proc"
    if not _mounted(proc):
        _run(["mount", "-t", "proc", "proc", str(proc)], "mounting /proc in the database root",
             "the local database needs root with mount rights; or set DATABASE_URL to another Postgres")


def _as_postgres(root: Path, *args: str, what: str, fix: str) -> subprocess.CompletedProcess:
    return _run(["chroot", "--userspec=postgres:postgres", str(root), *args], what, fix)


def initialized(root: Path) -> bool:
    return (root / DATA_DIR.lstrip("/") / "PG_VERSION").exists()


def init_data(root: Path, port: int) -> None:
    data = root / DATA_DIR.lstrip("/")
    if initialized(root):
        return
    if data.exists():  # initdb interrupted half-way: its folder is worthless
        shutil.rmtree(data)
    data.mkdir()
    _run(["chroot", str(root), "chown", "postgres:postgres", DATA_DIR], "chown of the data folder",
         "rerun ./scripts/setup")
    pwfile = root / "tmp" / "pwfile"
    pwfile.write_text("postgres\n")
    os.chmod(pwfile, 0o644)
    try:
        _as_postgres(root, f"{BIN}/initdb", "-D", DATA_DIR, "-U", "postgres", "--pwfile=/tmp/pwfile",
                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                     "--locale=C.UTF-8", what="initdb", fix="run `tokentra db reset`")
    finally:
        pwfile.unlink(missing_ok=True)


def running(root: Path, port: int) -> bool:
    pid = root / DATA_DIR.lstrip("/") / "postmaster.pid"
    if not pid.exists():
        return False
    try:
        os.kill(int(pid.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    return _port_open(port)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(settings: Settings | None = None, log=print) -> Path:
    """Provision if needed, bring the server's settings to SERVER_CONF, then start it. A running server
    is left alone unless its settings changed: then it is restarted once, since most of them (shared
    buffers, preloaded libraries) apply only at start."""
    settings = settings or get_settings()
    port = settings.db_port
    root = provision(settings, log)
    _ensure_proc(root)
    init_data(root, port)
    changed = reconcile_conf(root / DATA_DIR.lstrip("/"), server_conf(port))
    if running(root, port):
        if changed:
            log(f"Restarting Postgres to apply changed settings: {', '.join(changed)}")
            _as_postgres(root, f"{BIN}/pg_ctl", "-D", DATA_DIR, "-l", f"{DATA_DIR}/server.log", "-m", "fast",
                         "-w", "-t", "60", "restart", what="restarting Postgres",
                         fix=f"see {root}{DATA_DIR}/server.log, or run `tokentra db reset`")
        return root
    if _port_open(port):
        raise SetupError(f"port {port} is taken by another process; stop it, or set DATABASE_URL to use it")
    stale = root / DATA_DIR.lstrip("/") / "postmaster.pid"
    stale.unlink(missing_ok=True)  # left by a server killed with the session; its process is gone
    _as_postgres(root, f"{BIN}/pg_ctl", "-D", DATA_DIR, "-l", f"{DATA_DIR}/server.log", "-w", "-t", "60",
                 "start", what="starting Postgres",
                 fix=f"see {root}{DATA_DIR}/server.log, or run `tokentra db reset`")
    for _ in range(50):
        if _port_open(port):
            return root
        time.sleep(0.1)
    raise SetupError(f"Postgres started but does not answer on {port}; see {root}{DATA_DIR}/server.log")


def stop(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    root = root_dir(settings)
    if running(root, settings.db_port):
        _as_postgres(root, f"{BIN}/pg_ctl", "-D", DATA_DIR, "-m", "fast", "-w", "stop",
                     what="stopping Postgres", fix="kill the postgres process by hand")


def reset(settings: Settings | None = None, log=print) -> Path:
    """Drop the local data folder and start on an empty cluster (the cached root is kept)."""
    stop(settings)
    root = root_dir(settings)
    data = root / DATA_DIR.lstrip("/")
    if data.exists():
        shutil.rmtree(data)
    return start(settings, log)


def status(settings: Settings | None = None) -> Status:
    settings = settings or get_settings()
    root = root_dir(settings)
    return Status(_marker(root).exists(), initialized(root), running(root, settings.db_port), root)
