"""Usage of gateway calls, written through the ingest path after the response, off the request's path.

Each finished call puts one event on an in-process queue; a writer task takes what has gathered (up to
gateway_usage_batch events), groups it by key and stores it with the ingest function's own store_events
(same validation, pricing, exactly-once claim by request id, reservation commit), after carving each
call admitted against a budget lease into a reservation of its own (so the event commits it). A failed write is
retried with backoff under the same request ids, so a retry never doubles a call. On shutdown the queue is
drained before the database pool closes. What is lost is bounded to a crash of this process between the
answer and the write; its reservations then expire with their TTL.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from contextlib import suppress
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn
from tokentra_core.settings import get_settings
from tokentra_functions.auth import ApiKeyOrg
from tokentra_functions.gateway import metrics
from tokentra_functions.gateway.admission import Admission
from tokentra_functions.ingest import store_events

log = logging.getLogger("tokentra.gateway.usage")


class UsageRecorder:
    def __init__(self, pool: AsyncConnectionPool[AsyncConn], admission: Admission) -> None:
        self.pool = pool
        self.admission = admission
        self.queue: asyncio.Queue[tuple[ApiKeyOrg, dict[str, Any], dict[str, Any] | None]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.stored = 0
        self.failed = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, key: ApiKeyOrg, event: dict[str, Any], carve: dict[str, Any] | None = None) -> None:
        """Queue one call's event (never blocks, never raises); its tokens count against the key's
        tokens-per-minute window at once. carve: the call's hold in a budget lease (Hold.carve)."""
        self._idle.clear()
        self.admission.count_tokens(key.key_id, event.get("input_tokens", 0) + event.get("output_tokens", 0))
        self.queue.put_nowait((key, event, carve))
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="gateway-usage")

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far is written (shutdown, tests, benchmarks)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        await self.drain()
        if self.task is not None:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        settings = get_settings()
        while True:
            first = await self.queue.get()
            # A moment for more calls to finish: one write for many keeps the writer's work (and the
            # database's) off the CPU the calls in flight need.
            await asyncio.sleep(settings.gateway_usage_linger_seconds)
            batch = [first]
            while len(batch) < settings.gateway_usage_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await self._write(batch)
            if self.queue.empty():
                self._idle.set()

    async def _write(self, batch: list[tuple[ApiKeyOrg, dict[str, Any], dict[str, Any] | None]]) -> None:
        settings = get_settings()
        by_key: dict[UUID, tuple[ApiKeyOrg, list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for key, event, carve in batch:
            group = by_key.setdefault(key.key_id, (key, [], []))
            group[1].append(event)
            if carve is not None:
                group[2].append(carve)
        for key, events, carves in by_key.values():
            delay = settings.gateway_usage_retry_base_seconds
            for attempt in range(1, settings.gateway_usage_attempts + 1):
                try:
                    if carves:  # once only, whatever the retries: the reservation ids are the calls'
                        async with self.pool.connection() as conn:
                            await conn.execute("select private.gateway_carve_calls(%s, %s)",
                                               (key.org_id, Jsonb(carves)))
                    result = await store_events(self.pool, key, events)
                    await self._after_store(key, events)
                except Exception as exc:  # the database is away: retry the same request ids
                    log.warning("gateway usage write failed org=%s events=%d attempt=%d: %s",
                                key.org_id, len(events), attempt, type(exc).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                self.stored += result.accepted + result.duplicates
                if result.rejected:
                    self.failed += len(result.rejected)
                    log.error("gateway usage rejected org=%s: %s", key.org_id,
                              "; ".join(f"{r.field}: {r.message}" for r in result.rejected[:3]))
                break
            else:
                self.failed += len(events)
                log.error("gateway usage lost org=%s events=%d after %d attempts", key.org_id, len(events),
                          settings.gateway_usage_attempts)

    async def _after_store(self, key: ApiKeyOrg, events: list[dict[str, Any]]) -> None:
        """The priced cost of stored calls, in metrics."""
        ids = [e["request_id"] for e in events]
        async with self.pool.connection() as conn:
            # Bounds on occurred_at let the planner open only the batch's day partitions, not all of them.
            stamps = sorted(e["timestamp"] for e in events)
            cur = await conn.execute(
                "select u.provider, sum(u.cost_usd) as cost from public.usage_records u "
                "where u.org_id = %s and u.occurred_at >= %s::timestamptz and u.occurred_at <= %s::timestamptz "
                "and u.request_id = any(%s) group by 1",
                (key.org_id, stamps[0], stamps[-1], ids))
            costs: dict[str, Decimal] = defaultdict(Decimal)
            for row in await cur.fetchall():
                costs[row["provider"]] += row["cost"] or Decimal(0)
        for provider, cost in costs.items():
            metrics.COST.labels(provider).inc(float(cost))
