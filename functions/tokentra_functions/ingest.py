"""POST /functions/v1/ingest: store a batch of usage events exactly once, priced in SQL."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions.auth import ApiKeyOrg, authenticate, presented_key
from tokentra_functions.budget_enforcement import settle_budgets
from tokentra_functions.models import ErrorBody, IngestEvent, IngestResult, Rejection, TimeWindow

router = APIRouter(tags=["ingest"])
log = logging.getLogger("tokentra.ingest")
UNAUTHORIZED = {"error": "unauthorized", "message": "a valid API key is required"}


async def read_limited_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than limit (without reading much past it)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def authorize(request: Request, pool: Pool, scopes: frozenset[str] = frozenset({"ingest"})
                    ) -> ApiKeyOrg | JSONResponse:
    """The key's organization, or the 401/429 response to send instead (401 too for a key with none of
    the scopes)."""
    async with pool.connection() as conn:
        key = await authenticate(conn, presented_key(request))
        if key is None or not scopes & set(key.scopes):
            return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        cur = await conn.execute("select * from private.take_rate_limit(%s, %s)",
                                 (key.key_id, key.rate_limit_per_minute))
        limit = await cur.fetchone()
    if not limit["allowed"]:
        return error(429, "rate_limited", "the API key's request rate limit is exceeded",
                     {"Retry-After": str(max(1, limit["retry_after"]))})
    return key


async def read_batch(request: Request, pool: Pool, name: str) -> tuple[ApiKeyOrg, list] | JSONResponse:
    """The key's organization and the list under `name` of a `{name: [...]}` body, or the error response to
    send (401/429 from authorize, 413 too large or too many items, 400 not JSON, 422 wrong shape)."""
    settings = get_settings()
    key = await authorize(request, pool)
    if isinstance(key, JSONResponse):
        return key
    body = await read_limited_body(request, settings.ingest_max_bytes)
    if body is None:
        return error(413, "too_large", f"a request carries at most {settings.ingest_max_bytes} bytes")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error(400, "not_json", "the body is not valid JSON")
    if not isinstance(payload, dict) or not isinstance(payload.get(name), list):
        return error(422, "invalid_request", f'{name}: the body must be an object {{"{name}": [...]}}')
    if len(payload[name]) > settings.ingest_max_events:
        return error(413, f"too_many_{name}", f"{name}: at most {settings.ingest_max_events} items a request")
    return key, payload[name]


def validate(raw: list, now: datetime, retention_days: int) -> tuple[list[dict], list[Rejection]]:
    rows, rejected = [], []
    window = TimeWindow(now, retention_days)
    for idx, item in enumerate(raw):
        try:
            event = IngestEvent.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "event"
            rejected.append(Rejection(index=idx, field=field, message=first["msg"]))
            continue
        why = event.check_time(window)
        if why:
            rejected.append(Rejection(index=idx, field="timestamp", message=why))
            continue
        rows.append(event.row(idx))
    return rows, rejected


async def store_events(pool: Pool, key: ApiKeyOrg, raw: list, budget_headers: dict[str, str] | None = None
                       ) -> IngestResult:
    """Validate and store events for the key's organization; every valid event is stored or reported.

    Afterwards, reservations the stored events carry are committed, and budget_headers (if given) is
    filled with the batch's budget status (functions/budget_enforcement.py)."""
    settings = get_settings()
    rows, rejected = validate(raw, datetime.now(UTC), settings.retention_days)
    accepted = duplicates = unpriced = 0
    stored = set()
    if rows:
        async with pool.connection() as conn:
            cur = await conn.execute("select * from private.ingest_events(%s, %s, %s, %s)",
                                     (key.org_id, key.key_id, key.project_id, Jsonb(rows)))
            for r in await cur.fetchall():
                if r["outcome"] == "accepted":
                    accepted += 1
                    unpriced += not r["priced"]
                elif r["outcome"] == "duplicate":
                    duplicates += 1
                else:
                    rejected.append(Rejection(
                        index=r["idx"], field="request_id",
                        message="conflicts with the stored event of this request_id (content differs); not stored"))
                    continue
                stored.add(r["idx"])
        await settle_budgets(pool, key, [row for row in rows if row["idx"] in stored], budget_headers)
    rejected.sort(key=lambda r: r.index)
    log.info("ingest org=%s accepted=%d duplicates=%d rejected=%d", key.org_id, accepted, duplicates, len(rejected))
    return IngestResult(accepted=accepted, duplicates=duplicates, unpriced=unpriced, rejected=rejected)


@router.post(
    "/ingest",
    response_model=IngestResult,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
               422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Store a batch of up to 1,000 usage events",
)
async def ingest(request: Request, pool: Pool) -> JSONResponse:
    batch = await read_batch(request, pool, "events")
    if isinstance(batch, JSONResponse):
        return batch
    key, events = batch
    budget_headers: dict[str, str] = {}
    result = await store_events(pool, key, events, budget_headers)
    return JSONResponse(result.model_dump(mode="json"), headers=budget_headers)


app = function_app(router, title="TokenTRA ingest")
