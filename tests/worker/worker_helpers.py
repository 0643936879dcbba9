"""Helpers of the worker tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from tokentra_core.db import connect

# Short leases and backoffs, so that takeovers and retries happen within seconds.
FAST = {
    "TOKENTRA_WORKER_LEASE_SECONDS": "2",
    "TOKENTRA_WORKER_POLL_SECONDS": "0.3",
    "TOKENTRA_WORKER_RETRY_BASE_SECONDS": "0.3",
    "TOKENTRA_ALERT_RETRY_BASE_SECONDS": "0.1",
    "TOKENTRA_ALERT_RETRY_MAX_SECONDS": "1",
    "TOKENTRA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
}


def wait_for(predicate: Callable[[], object], timeout: float = 60, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def query(dsn: str, sql: str, params: tuple = ()) -> list[dict]:
    with connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []
