"""With gateway_usage_writer_backend_nice, the usage writer's Postgres backends run at the writer's niceness
when the database is on this machine, and no other process is ever reniced: the backend is recognised by
its pid, process name and start time together."""

from __future__ import annotations

import asyncio
import os
import random
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from tokentra_core.settings import get_settings
from tokentra_functions.gateway.usage_writer import _local_backend, lower_backend_priority

pytestmark = pytest.mark.skipif(os.environ.get("TOKENTRA_TEST_POOLER") == "1",
                                reason="behind a transaction pooler a connection has no backend of its own")


async def _renice(dsn: str) -> tuple[int, int, float, psycopg.pq.TransactionStatus]:
    async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
        await lower_backend_priority(conn)
        status = conn.info.transaction_status
        cur = await conn.execute("select pid, extract(epoch from backend_start)::float8 as started "
                                 "from pg_stat_activity where pid = pg_backend_pid()")
        row = await cur.fetchone()
        assert row is not None
        return row["pid"], os.getpriority(os.PRIO_PROCESS, row["pid"]), row["started"], status


def test_writer_backend_gets_the_writers_niceness(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    nice = random.randint(3, 15)
    monkeypatch.setenv("TOKENTRA_GATEWAY_USAGE_WRITER_NICE", str(nice))
    get_settings.cache_clear()
    try:
        pid, priority, started, status = asyncio.run(_renice(dsn))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert priority == nice
    assert status == psycopg.pq.TransactionStatus.IDLE  # lent by the pool outside a transaction
    assert _local_backend(pid, started)
    # The same pid with another start time, or a process that is not Postgres, is not the backend.
    assert not _local_backend(pid, started + random.uniform(5, 3600))
    assert not _local_backend(os.getpid(), time.time())
    assert not _local_backend(2**22 + random.randint(1, 1000), started)  # past pid_max: no such process
