"""The gateway's usage writer: a process of its own that stores finished calls through the ingest path.

The server process (recorder.py) sends it one JSON line per call on its standard input and keeps each call
until this process answers, on its standard output, that the call is written (stored, found stored
already, or given up after the retries). Written here and not in the server: the store's Python (checking,
pricing, staging) and its waits then never sit between a request and its answer on the server's event
loop. It runs at a lower OS priority so the calls in flight get the CPU first.

Every step is safe to repeat under the same ids (the store claims each request id once, the commit closes
each call's reservation once), so a call this process received but did not confirm before it died is sent again
to the next writer and still lands once. When its standard input closes (the server stopping, or dying),
it writes what it received and exits.

    python -m tokentra_functions.gateway.usage_writer
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections import defaultdict
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn
from tokentra_core.settings import get_settings
from tokentra_functions._app import autocommit
from tokentra_functions.auth import ApiKeyOrg
from tokentra_functions.gateway.policy import ingest_key
from tokentra_functions.ingest import store_events

log = logging.getLogger("tokentra.gateway.usage")

Call = tuple[int, ApiKeyOrg, dict[str, Any], dict[str, Any] | None]  # sequence number, key, event, hold


def parse(line: bytes) -> Call:
    """One call as the server sent it (recorder.encode)."""
    item = json.loads(line)
    key_id, org_id, project_id = item["key"]
    key = ingest_key(UUID(key_id), UUID(org_id), UUID(project_id) if project_id else None)
    return item["seq"], key, item["event"], item["hold"]


class Writer:
    def __init__(self, pool: AsyncConnectionPool[AsyncConn], out: asyncio.StreamWriter | Any) -> None:
        self.pool = pool
        self.out = out
        self.queue: asyncio.Queue[Call | None] = asyncio.Queue()

    async def run(self) -> None:
        settings = get_settings()
        ended = False
        while not ended:
            first = await self.queue.get()
            if first is None:
                break
            # A moment for more calls to finish: one write for many keeps the writer's work (and the
            # database's) off the CPU the calls in flight need.
            await asyncio.sleep(settings.gateway_usage_linger_seconds)
            batch = [first]
            while len(batch) < settings.gateway_usage_batch and not self.queue.empty():
                item = self.queue.get_nowait()
                if item is None:
                    ended = True
                    break
                batch.append(item)
            await self.write(batch)

    async def write(self, batch: list[Call]) -> None:
        settings = get_settings()
        by_key: dict[UUID, tuple[ApiKeyOrg, list[int], list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for seq, key, event, hold in batch:
            group = by_key.setdefault(key.key_id, (key, [], [], []))
            group[1].append(seq)
            group[2].append(event)
            if hold is not None:
                group[3].append({**hold, "request_id": event["request_id"]})
        for key, seqs, events, holds in by_key.values():
            stored = failed = 0
            costs: dict[str, Decimal] = {}
            delay = settings.gateway_usage_retry_base_seconds
            for attempt in range(1, settings.gateway_usage_attempts + 1):
                try:
                    result = await store_events(self.pool, key, events)
                    rows = await self.stored(key, events)
                    if holds:  # after the store, so each call is closed at its stored cost; repeatable
                        for hold in holds:
                            row = rows.get(hold["request_id"])
                            cost = row[1] if row else None  # as text, like amount_usd: numeric in SQL
                            hold["stored"], hold["cost_usd"] = row is not None, None if cost is None else str(cost)
                        async with autocommit(self.pool) as conn:  # one statement: no BEGIN, COMMIT
                            await conn.execute("select private.gateway_commit_calls(%s, %s)",
                                               (key.org_id, Jsonb(holds)))
                    costs = defaultdict(Decimal)
                    for provider, cost in rows.values():
                        costs[provider] += cost or Decimal(0)
                except Exception as exc:  # the database is away: retry the same request ids
                    log.warning("gateway usage write failed org=%s events=%d attempt=%d: %s",
                                key.org_id, len(events), attempt, type(exc).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                stored = result.accepted + result.duplicates
                if result.rejected:
                    failed = len(result.rejected)
                    log.error("gateway usage rejected org=%s: %s", key.org_id,
                              "; ".join(f"{r.field}: {r.message}" for r in result.rejected[:3]))
                break
            else:
                failed = len(events)
                log.error("gateway usage lost org=%s events=%d after %d attempts", key.org_id, len(events),
                          settings.gateway_usage_attempts)
            self.out.write(json.dumps({"done": seqs, "stored": stored, "failed": failed,
                                       "costs": {p: str(c) for p, c in costs.items()}}).encode() + b"\n")
            await self.out.drain()

    async def stored(self, key: ApiKeyOrg, events: list[dict[str, Any]]) -> dict[str, tuple[str, Decimal | None]]:
        """The provider and priced cost of each of the calls that is stored, by request id: for the server's
        metrics, and the cost each call's reservation is committed at."""
        ids = [e["request_id"] for e in events]
        stamps = sorted(e["timestamp"] for e in events)
        async with autocommit(self.pool) as conn:  # one statement: no BEGIN, COMMIT
            # Bounds on occurred_at let the planner open only the batch's day partitions, not all of them.
            cur = await conn.execute(
                "select u.request_id, u.provider, u.cost_usd from public.usage_records u "
                "where u.org_id = %s and u.occurred_at >= %s::timestamptz and u.occurred_at <= %s::timestamptz "
                "and u.request_id = any(%s)",
                (key.org_id, stamps[0], stamps[-1], ids))
            return {row["request_id"]: (row["provider"], row["cost_usd"]) for row in await cur.fetchall()}


def _local_backend(pid: int, started: float) -> bool:
    """Whether process `pid` on this machine is the Postgres backend that started at `started` (epoch
    seconds): a database elsewhere, or in a container of its own, has its own pids."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            name = f.read().strip()
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks since boot
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return name.startswith("postgres") and abs(boot + ticks / os.sysconf("SC_CLK_TCK") - started) < 2


async def lower_backend_priority(conn: AsyncConn) -> None:
    """A new connection's backend, when it runs on this machine, gets the writer's niceness (never a higher
    priority than it has): the usage batches it stores then wait while calls in flight need the CPU."""
    nice = get_settings().gateway_usage_writer_nice
    cur = await conn.execute("select pid, extract(epoch from backend_start)::float8 as started "
                             "from pg_stat_activity where pid = pg_backend_pid()")
    row = await cur.fetchone()
    await conn.rollback()  # the pool lends connections idle, outside a transaction
    if row is None or not _local_backend(row["pid"], row["started"]):
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, row["pid"]) < nice:
            os.setpriority(os.PRIO_PROCESS, row["pid"], nice)
    except OSError as exc:  # another user's process without the right to renice it: left as it is
        log.info("gateway usage writer left its backend's priority: %s", type(exc).__name__)


async def _main() -> None:
    settings = get_settings()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=settings.gateway_max_body_bytes * 2)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout.buffer)
    out = asyncio.StreamWriter(transport, protocol, None, loop)
    pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
        settings.dsn, min_size=1, max_size=2, open=False,
        configure=lower_backend_priority if settings.gateway_usage_writer_backend_nice else None,
        kwargs={"prepare_threshold": None, "row_factory": dict_row})
    await pool.open(wait=True, timeout=30)
    writer = Writer(pool, out)
    task = loop.create_task(writer.run(), name="gateway-usage-writer")
    try:
        while line := await reader.readline():
            if line.endswith(b"\n"):  # a line cut short by a dying server is not a call
                writer.queue.put_nowait(parse(line))
        writer.queue.put_nowait(None)
        await task
    finally:
        await pool.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr)
    # Below the server's priority: a call waiting for the CPU matters more than a usage row written late.
    os.nice(get_settings().gateway_usage_writer_nice)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
