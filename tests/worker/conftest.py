"""Fixtures of the worker tests: a scratch database (no pg_cron, so the worker runs the periodic SQL
too, and nothing of other tests is in its queues) and real `tokentra worker` processes on it, with short
leases and backoffs so that takeovers and retries happen within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from worker_helpers import FAST

from tokentra_core.migrations import migrate
from tokentra_dev.pooler import direct


@pytest.fixture
def worker_dsn(scratch_dsn: str) -> str:
    migrate(direct(scratch_dsn), log=lambda *_: None)  # migrations never go through a pooler
    return scratch_dsn


@pytest.fixture
def start_worker(worker_dsn: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """start_worker(*args, **env) runs `tokentra worker *args` on the scratch database, its output in
    tmp_path/worker-<n>.log; every worker still running afterwards is killed."""
    procs: list[tuple[subprocess.Popen, object]] = []

    def start(*args: str, **env: str) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115 - closed at teardown
        proc = subprocess.Popen(
            [sys.executable, "-m", "tokentra_cli.cli", "worker", *args],
            env={**os.environ, **FAST, **env, "DATABASE_URL": worker_dsn},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append((proc, log))
        return proc

    yield start
    for proc, log in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        log.close()
