"""Routing over HTTP, for API keys (the SDK, the gateway, any client):

GET  /functions/v1/models          the model registry for the key's organization: capabilities, limits,
                                   deprecation, current price, quality blended with its feedback, health.
GET  /functions/v1/route/snapshot  what routing decides from (rules + registry rows), for clients that
                                   decide locally (the SDK refreshes it in the background); ETag aware.
POST /functions/v1/route           one decision, made by the SDK's own `tokentra.routing` module.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokentra.routing import RouteRequest, Snapshot, decide
from tokentra_functions._app import Pool, error, function_app, read_limited_body
from tokentra_functions._inputs import Text
from tokentra_functions.auth import ApiKeyOrg, authorize
from tokentra_functions.models import ErrorBody

__all__ = ["RouteBody", "app", "router"]

router = APIRouter(tags=["routing"])
MAX_BODY = 16 * 1024
# Keys made for ingestion route too (the SDK holds one key); gateway keys route their own calls.
SCOPES = frozenset({"ingest", "gateway"})
# How long a decision may use an organization's snapshot: rule edits and feedback reach decisions within
# this (plus one read); reading the snapshot costs tens of milliseconds, a decision tens of microseconds.
SNAPSHOT_SECONDS = 10.0
# An expired snapshot still answers while a fresh one is read in the background, so no request waits
# for that read; one older than this (an organization not seen for a while) is read first instead.
SNAPSHOT_STALE_SECONDS = 60.0
_log = logging.getLogger(__name__)
Tag = Annotated[str, Field(min_length=1, max_length=200)]


class RouteBody(BaseModel):
    """A call about to be made. Text never leaves the caller: the task type and token counts stand for it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model: Tag = Field(description="The model the caller asked for.")
    provider: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Its provider; default: the registry's provider of that model.")
    task_type: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="A task type of tokentra.TASK_TYPES (or a category: chat, coding, ...).")
    input_tokens: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    output_tokens: Annotated[int, Field(ge=0, le=100_000_000)] | None = Field(
        default=None, description="Expected output tokens; default: half the input, at least 64.")
    feature: Tag | None = None
    team: Tag | None = None
    project: Tag | None = None
    user_id: Tag | None = None
    tags: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=50,
                                                      description="Other tags rule conditions may name.")
    strategy: Literal["cheapest", "fastest", "balanced", "quality"] | None = Field(
        default=None, description="Choose from the registry when no rule decides; none: rules only.")
    quality_floor: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="Lowest acceptable quality (0..1) for the task's category.")
    needs_tools: bool = False
    needs_vision: bool = False
    needs_json: bool = False
    providers: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=20, description="Providers the caller can call; default: the asked one's only.")
    stable_key: Tag | None = Field(default=None, description="Experiment arms stick to it (default: user_id).")
    request_id: Tag | None = None

    def to_request(self) -> RouteRequest:
        data = self.model_dump()
        providers = data.pop("providers")
        return RouteRequest(**data, providers=tuple(p.lower() for p in providers) if providers else None)


class DecisionBody(BaseModel):
    model: str
    provider: str | None
    reason: str
    estimated_cost: float | None = Field(description="USD at list price for the expected tokens.")
    estimated_original_cost: float | None
    fallbacks: list[str] = Field(description="Models to try, in order, if the chosen one fails.")
    rule_id: str | None
    recommendation_id: str | None
    experiment: dict[str, Any] | None
    arm: str | None = Field(description="What the usage event's routing_arm should say.")
    routed: bool
    blocked: bool
    original_model: str
    original_provider: str | None
    directives: dict[str, dict[str, Any]] = Field(description="enable_cache, compress_prompt, rate_limit, ...")
    snapshot_generated_at: str | None


# ---------------------------------------------------------------- snapshots
_cache: dict[str, tuple[float, Snapshot]] = {}  # org -> (expires at, snapshot)
_locks: dict[str, asyncio.Lock] = {}
_refreshing: set[str] = set()
_tasks: set[asyncio.Task[None]] = set()  # referenced until done, so the loop cannot drop them


async def _snapshot_json(pool: Pool, org: str) -> Any:
    async with pool.connection() as conn:
        cur = await conn.execute("select private.routing_snapshot(%s) as s", (org,))
        row: Any = await cur.fetchone()  # dict rows (the pool's row factory)
    return row["s"]


async def snapshot_for(pool: Pool, org: str) -> Snapshot:
    """The organization's snapshot, read at most once per SNAPSHOT_SECONDS per process; compiled for
    decisions once per read (Snapshot.from_dict), never per decision."""
    hit = _cache.get(org)
    now = time.monotonic()
    if hit is not None:
        expires, snapshot = hit
        if expires > now:
            return snapshot
        if expires + SNAPSHOT_STALE_SECONDS - SNAPSHOT_SECONDS > now:
            if org not in _refreshing:
                _refreshing.add(org)
                task = asyncio.create_task(_refresh(pool, org))
                _tasks.add(task)
                task.add_done_callback(_tasks.discard)
            return snapshot
    return await _load(pool, org)


async def _load(pool: Pool, org: str) -> Snapshot:
    lock = _locks.setdefault(org, asyncio.Lock())
    async with lock:
        hit = _cache.get(org)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        snapshot = Snapshot.from_dict(await _snapshot_json(pool, org))
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[org] = (time.monotonic() + SNAPSHOT_SECONDS, snapshot)
        return snapshot


async def _refresh(pool: Pool, org: str) -> None:
    try:
        await _load(pool, org)
    except Exception as exc:  # the stale snapshot keeps answering; the next request tries again
        _log.warning("routing snapshot refresh failed (%s); the previous snapshot still answers",
                     type(exc).__name__)
    finally:
        _refreshing.discard(org)


async def _key(request: Request, pool: Pool) -> ApiKeyOrg | JSONResponse:
    return await authorize(request, pool, SCOPES)


# ---------------------------------------------------------------- endpoints
@router.get(
    "/models",
    responses={401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="The model registry, with quality from the organization's feedback and provider health",
)
async def models(
    request: Request,
    pool: Pool,
    provider: Annotated[Text | None, Query(max_length=64)] = None,
    family_only: Annotated[bool, Query(description="Only models of a family the project maintains")] = False,
    include_deprecated: bool = True,
    kind: Annotated[Literal["text", "embedding", "special"] | None, Query()] = None,
) -> Response:
    key = await _key(request, pool)
    if isinstance(key, JSONResponse):
        return key
    async with pool.connection() as conn:
        cur = await conn.execute("select private.models_for(%s, %s, %s, %s, %s)::text as data",
                                 (key.org_id, provider.lower() if provider else None, family_only,
                                  include_deprecated, kind))
        row: Any = await cur.fetchone()  # dict rows (the pool's row factory)
    return Response(b'{"data":' + row["data"].encode() + b"}", media_type="application/json")


@router.get(
    "/route/snapshot",
    responses={304: {"description": "Unchanged since the ETag sent in If-None-Match"},
               401: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Rules and registry rows routing decides from, for clients that decide locally",
)
async def route_snapshot(request: Request, pool: Pool) -> Response:
    key = await _key(request, pool)
    if isinstance(key, JSONResponse):
        return key
    payload = await _snapshot_json(pool, str(key.org_id))
    # generated_at changes on every read; the ETag covers what decisions depend on
    stable = json.dumps({"rules": payload["rules"], "models": payload["models"]}, sort_keys=True).encode()
    etag = '"' + hashlib.sha256(stable).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(json.dumps(payload).encode(), media_type="application/json",
                    headers={"ETag": etag, "Cache-Control": "private, max-age=30"})


@router.post(
    "/route",
    response_model=DecisionBody,
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
               422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Decide which model should answer a call",
    # The body is read and validated in the handler, after authentication, so an unauthenticated caller
    # learns nothing about its shape; the document still describes it.
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"application/json": {"schema": RouteBody.model_json_schema()}}}},
)
async def route(request: Request) -> Response:

    pool = request.app.state.pool  # not a dependency: resolving one costs more than the decision
    # A key verified in the last seconds answers from memory (revocations reach it by notification) and is
    # counted against its rate limit after the answer: no database round trip on this path.
    key = await authorize(request, pool, SCOPES, cached=True)
    if isinstance(key, JSONResponse):
        return key
    raw = await read_limited_body(request, MAX_BODY)
    if raw is None:
        return error(413, "too_large", f"a request carries at most {MAX_BODY} bytes")
    try:
        # pydantic's own JSON parser: no dict step, and no RecursionError on a deeply nested body.
        parsed = RouteBody.model_validate_json(raw or b"{}")
        wanted = parsed.to_request()
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            return error(400, "not_json", "the body is not valid JSON")
        field = ".".join(str(p) for p in first["loc"]) or "body"
        return error(422, "invalid_request", f"{field}: {first['msg']}")
    except ValueError as exc:  # RouteRequest's own checks (their message starts with the field)
        return error(422, "invalid_request", str(exc))
    snapshot = await snapshot_for(pool, str(key.org_id))
    decision = decide(wanted, snapshot)
    # Serialised once, here: a JSONResponse would do the same, this skips its extra checks.
    body = json.dumps({**decision.to_dict(), "snapshot_generated_at": snapshot.generated_at},
                      separators=(",", ":"), allow_nan=False).encode()
    return Response(body, media_type="application/json")


app = function_app(router)
