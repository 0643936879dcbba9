"""POST /functions/v1/ingest: store a batch of usage events exactly once, priced in SQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from uuid import UUID
from weakref import WeakKeyDictionary

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tokentra_core.db import AsyncConn
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, autocommit, error, function_app, json_body, on_connect, read_limited_body
from tokentra_functions.auth import ApiKeyOrg, authorize
from tokentra_functions.batch_body import BodyError, parse_batch
from tokentra_functions.budget_enforcement import settle_budgets
from tokentra_functions.ingest_schema import (
    STAGED,
    STAGED_COLUMNS,
    Batch,
    IngestBatch,
    Staging,
    staging,
)
from tokentra_functions.models import ErrorBody, IngestResult, Rejection

router = APIRouter(tags=["ingest"])
log = logging.getLogger("tokentra.ingest")
# Created on a connection's first batch and emptied at every commit, so each transaction starts with it
# empty (behind a transaction pooler too: whichever server connection runs the batch has one or creates
# it). It is kept, not dropped, so that private.ingest_staged's statements keep their plans: a new table
# each time would have them planned again at every call. (The price names a batch's parts have resolved
# are kept beside it in a table private.ingest_staged creates itself.)
STAGE_TABLE = (f"create temp table if not exists ingest_batch ({', '.join(f'{name} {kind}' for name, kind in STAGED)}) "
               "on commit delete rows")
STAGE_COPY = f"copy pg_temp.ingest_batch ({', '.join(STAGED_COLUMNS)}) from stdin (format binary)"
STAGED_TYPES = [kind for _, kind in STAGED]
# The first part of a batch (see _parts); a batch under twice this many is stored in one part.
_FIRST_PART = 100
NOBODY = UUID(int=0)  # the organization and key of the empty batch a new connection stores
_CONFLICT = "conflicts with the stored event of this request_id (content differs); not stored"
# Per pool (so per database), the days this process has seen given a usage partition. A batch whose days
# are all known skips the partition check, a round trip; a backfilled day still gets its partition first.
# Partitions are dropped only past the retention period, whose events are refused anyway.
_PARTITIONED: WeakKeyDictionary[Pool, set[date]] = WeakKeyDictionary()


@on_connect
async def plan_ingest(conn: AsyncConn) -> None:
    """Store an empty batch on a new connection: its staging table is created and private.ingest_staged's
    statements (and its triggers') are planned here, at 20-50 ms of Postgres, instead of in the first
    batch the connection carries. Nothing is written. A failure costs only the head start, and short
    timeouts keep a lock held elsewhere (its triggers take the rollups' lock) from holding up the pool."""
    try:
        async with conn.transaction():
            await conn.execute("select set_config('lock_timeout', '1s', true), "
                               "set_config('statement_timeout', '10s', true)")
            await conn.execute(STAGE_TABLE)
            await conn.execute("select from private.ingest_staged(%s, %s, null)", (NOBODY, NOBODY))
    except psycopg.Error as exc:
        if conn.broken:
            raise
        log.warning("planning ingest on a new connection failed: %s", type(exc).__name__)


async def read_authorized_body(request: Request, pool: Pool) -> tuple[ApiKeyOrg, bytes] | JSONResponse:
    """The ingest key's organization and the request's body, or the error response to send (401/429 from
    authorize, 413 over the size limit)."""
    key = await authorize(request, pool)
    if isinstance(key, JSONResponse):
        return key
    limit = get_settings().ingest_max_bytes
    body = await read_limited_body(request, limit)
    if body is None:
        return error(413, "too_large", f"a request carries at most {limit} bytes")
    return key, body


async def read_batch(request: Request, pool: Pool, name: str) -> tuple[ApiKeyOrg, list] | JSONResponse:
    """The key's organization and the items under `name` of a `{name: [...]}` body, or the error response
    to send (401/429 from authorize, 413 too large or too many items, 400 not JSON or nested too deep, 422
    wrong shape). An item that cannot be parsed on its own is a batch_body.Unreadable in the list."""
    read = await read_authorized_body(request, pool)
    if isinstance(read, JSONResponse):
        return read
    key, body = read
    settings = get_settings()
    try:
        items = parse_batch(body, name)
    except BodyError as exc:
        return error(exc.status, exc.code, str(exc))
    if len(items) > settings.ingest_max_events:
        return error(413, f"too_many_{name}", f"{name}: at most {settings.ingest_max_events} items a request")
    return key, items


async def store_events(pool: Pool, key: ApiKeyOrg, raw: list, budget_headers: dict[str, str] | None = None
                       ) -> IngestResult:
    """Validate and store events (items read from JSON) for the key's organization; every event is
    stored or reported. They are validated, checked and staged part by part on the way to the database.

    Afterwards, reservations the stored events carry are committed, and budget_headers (if given) is
    filled with the batch's budget status (budget_enforcement.py)."""
    events = staging(raw, datetime.now(UTC), get_settings().retention_days)
    accepted = duplicates = unpriced = 0
    stored: set[int] = set()
    outcomes = await _store(pool, key, events) if events.events else []
    batch = events.batch
    rejected = batch.rejected
    for idx, outcome, priced in outcomes:
        if outcome == "accepted":
            accepted += 1
            unpriced += not priced
        elif outcome == "duplicate":
            duplicates += 1
        else:
            rejected.append(Rejection(index=idx, field="request_id", message=_CONFLICT))
            continue
        stored.add(idx)
    if batch.rows:
        await settle_budgets(pool, key, _settled(batch, stored), budget_headers)
    rejected.sort(key=lambda r: r.index)
    log.info("ingest org=%s accepted=%d duplicates=%d rejected=%d", key.org_id, accepted, duplicates, len(rejected))
    return IngestResult(accepted=accepted, duplicates=duplicates, unpriced=unpriced, rejected=rejected)


async def _store(pool: Pool, key: ApiKeyOrg, events: Staging) -> list[tuple[int, str, bool]]:
    """Stage the events and store them in one transaction, part by part: each part is COPYed into a
    temporary table and stored by one set-based call, and while Postgres stores a part, the next one is
    checked and staged here (two cores working on one batch instead of one after the other). A request id
    a later part repeats is found claimed by the earlier part, as within one part: the first is stored."""
    async with autocommit(pool) as conn:
        days = events.days()
        known = _PARTITIONED.setdefault(pool, set())
        if not days <= known:
            # A backfilled day gets its partition first (one catalog lookup per distinct day when it exists),
            # in its own transaction: creating one locks the usage table, which the batch's must not hold.
            starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in sorted(days)]
            await conn.execute("select private.ensure_usage_partitions(%s)", (starts,))
            known |= days
        outcomes: list[tuple[int, str, bool]] = []
        async with conn.transaction():
            await conn.execute(STAGE_TABLE)
            staged = False  # whether the temporary table holds a part already stored
            pending: asyncio.Task[list[tuple[int, str, bool]]] | None = None
            for start, stop in _parts(len(events.events)):
                rows = events.stage(start, stop)
                if pending is not None:
                    outcomes += await pending
                    pending = None
                if not rows:
                    continue
                if staged:
                    # Not truncate: that gives the table a new file, which invalidates the cached plans.
                    await conn.execute("delete from pg_temp.ingest_batch")
                cur = conn.cursor()
                async with cur.copy(STAGE_COPY) as copy:
                    copy.set_types(STAGED_TYPES)
                    for row in rows:
                        await copy.write_row(row)
                pending = asyncio.ensure_future(_ingest_staged(conn, key))
                staged = True
                await asyncio.sleep(0)  # the call is sent before the next part's staging takes the CPU
            if pending is not None:
                outcomes += await pending
        return outcomes


def _parts(n: int) -> list[tuple[int, int]]:
    """Where a batch of n events is cut: a first part small enough that Postgres starts early, then parts
    each about three times the one before (1,000 events: 100, 300, 600). Reading and staging an event
    here costs about as much as storing it there, so while Postgres stores a part, the next part, larger,
    is staged in about the same time the part before it took. Every part costs Postgres a call
    (planning, price lookups, triggers), so there are few."""
    cuts, size, at = [], _FIRST_PART, 0
    while at < n:
        stop = n if n - at < 2 * size else at + size
        cuts.append((at, stop))
        at, size = stop, size * 3
    return cuts


async def _ingest_staged(conn: AsyncConn, key: ApiKeyOrg) -> list[tuple[int, str, bool]]:
    cur = await conn.execute("select idx, outcome, priced from private.ingest_staged(%s, %s, %s)",
                             (key.org_id, key.key_id, key.project_id))
    return [(r["idx"], r["outcome"], r["priced"]) for r in await cur.fetchall()]


def _settled(batch: Batch, stored: set[int]) -> list[dict]:
    """What budget settlement needs of the stored events: each reservation, and each distinct attribution."""
    out: list[dict] = []
    seen: set[tuple] = set()
    columns = zip(batch.column("idx"), batch.column("request_id"), batch.column("team"), batch.column("project"),
                  batch.column("feature"), batch.column("end_user_id"), batch.column("model"), batch.reservations,
                  strict=True)
    for idx, request_id, team, project, feature, user, model, reservation in columns:
        if idx not in stored:
            continue
        attribution = (team, project, feature, user, model)
        if reservation is None and attribution in seen:
            continue
        seen.add(attribution)
        out.append({"request_id": request_id, "team": team, "project": project, "feature": feature,
                    "end_user_id": user, "model": model,
                    "reservation_id": str(reservation) if reservation else None})
    return out


@router.post(
    "/ingest",
    response_model=IngestResult,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
               422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Store a batch of up to 1,000 usage events",
    openapi_extra=json_body(IngestBatch),
)
async def ingest(request: Request, pool: Pool) -> JSONResponse:
    read = await read_batch(request, pool, "events")
    if isinstance(read, JSONResponse):
        return read
    key, items = read
    budget_headers: dict[str, str] = {}
    result = await store_events(pool, key, items, budget_headers)
    return JSONResponse(result.model_dump(mode="json"), headers=budget_headers)


app = function_app(router, title="TokenTRA ingest")
