"""GET /functions/v1/realtime/sse: the organization's realtime topics as server-sent events, for local
development where no Supabase Realtime server runs.

It enforces what Supabase Realtime enforces: a topic is joined only if the user may read it
(private.may_read_topic, the function the policy on realtime.messages calls), and every poll selects
from realtime.messages as the user with realtime.topic() set, so the RLS policy filters each message.
It polls (a short transaction a few times a second, settings local to it) rather than LISTENing, so it
works behind a transaction pooler, and it holds no connection between polls.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, UserClaims, as_user

router = APIRouter(tags=["realtime"])

TOPIC = re.compile(r"^org:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:"
                   r"(usage|alerts|recommendations|budgets)$")
POLL_SECONDS = 0.25
# A message is stamped with its transaction's start, and may commit later than a poll that already
# passed that time: each poll looks this far back and drops what it has sent already.
OVERLAP = timedelta(seconds=10)
KEEPALIVE_SECONDS = 15
# Streams end after this long and the client reconnects (resuming after the last event id), so a
# server shutdown never waits on an open stream for long.
MAX_STREAM_SECONDS = 300
BATCH = 500


async def _allowed(pool: AsyncConnectionPool[AsyncConn], user: UserClaims, topics: list[str]) -> list[str]:
    async with as_user(pool, user) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("select t from unnest(%s::text[]) t where not private.may_read_topic(t)", (topics,))
        return [str(r["t"]) for r in await cur.fetchall()]


async def _poll(pool: AsyncConnectionPool[AsyncConn], user: UserClaims, topics: list[str],
                since: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with as_user(pool, user) as conn:
        for topic in topics:
            # Supabase Realtime's authorization check: the policy compares the row with realtime.topic().
            await conn.execute("select set_config('realtime.topic', %s, true)", (topic,))
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "select id, topic, event, payload, inserted_at from realtime.messages "
                "where topic = %s and extension = 'broadcast' and inserted_at > %s "
                "order by inserted_at, id limit %s",
                (topic, since, BATCH),
            )
            rows += await cur.fetchall()
    rows.sort(key=lambda r: r["inserted_at"])
    return rows


async def _start(pool: AsyncConnectionPool[AsyncConn], last_event_id: str | None) -> datetime:
    """Where the stream starts: after the client's last event (a reconnect), else now."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        if last_event_id and re.fullmatch(r"\d{10,20}", last_event_id.split("-")[0]):
            await cur.execute("select to_timestamp(%s::bigint / 1e6)::timestamp as t", (last_event_id.split("-")[0],))
        else:
            await cur.execute("select now()::timestamp as t")
        row = await cur.fetchone()
        if row is None:  # a select of one expression always answers one row
            raise RuntimeError("the start time query answered no row")
        start: datetime = row["t"]
        return start


def _event(name: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n"


async def _stream(pool: AsyncConnectionPool[AsyncConn], user: UserClaims, topics: list[str],
                  cursor: datetime) -> AsyncIterator[str]:
    # What is visible at the start was sent before the client subscribed: remembered, not replayed.
    sent = {str(r["id"]): r["inserted_at"] for r in await _poll(pool, user, topics, cursor - OVERLAP)
            if r["inserted_at"] <= cursor}
    yield _event("ready", {"topics": topics})
    started = last_write = time.monotonic()
    while time.monotonic() - started < MAX_STREAM_SECONDS and user.exp > time.time():
        # Shielded: a client that leaves mid-poll cancels the stream, not the transaction, so the
        # connection goes back to the pool clean instead of being torn down mid-pipeline.
        for row in await asyncio.shield(_poll(pool, user, topics, cursor - OVERLAP)):
            key = str(row["id"])
            if key in sent:
                continue
            sent[key] = row["inserted_at"]
            cursor = max(cursor, row["inserted_at"])
            stamp = int((row["inserted_at"] - datetime(1970, 1, 1)).total_seconds() * 1e6)
            yield _event("message", {"topic": row["topic"], "event": row["event"], "payload": row["payload"]},
                         f"{stamp}-{key}")
            last_write = time.monotonic()
        sent = {k: t for k, t in sent.items() if t > cursor - 2 * OVERLAP}
        if time.monotonic() - last_write > KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_write = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)


@router.get(
    "/realtime/sse",
    responses={200: {"content": {"text/event-stream": {}}, "description": "`ready`, then `message` events"},
               401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Follow realtime topics (org:<id>:usage|alerts|recommendations|budgets) as server-sent events",
)
async def sse(
    request: Request,
    user: CurrentUser,
    pool: Pool,
    topic: Annotated[list[str], Query(min_length=1, max_length=16, description="Topics to follow.")],
    last_event_id: Annotated[str | None, Header(max_length=80)] = None,
) -> Response:
    bad = [t for t in topic if not TOPIC.match(t)]
    if bad:
        return error(422, "invalid_request",
                     f"topic: {bad[0]!r} is not org:<organization id>:usage|alerts|recommendations|budgets")
    topics = list(dict.fromkeys(topic))
    refused = await _allowed(pool, user, topics)
    if refused:
        return error(403, "forbidden", f"topic: your role may not follow {refused[0]}")
    cursor = await _start(pool, last_event_id)
    return StreamingResponse(
        _stream(pool, user, topics, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


app = function_app(router, title="TokenTRA realtime (development transport)")
