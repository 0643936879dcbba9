"""The semantic cache for API keys (the SDK); the gateway calls tokentra_core.cache in process.

POST /functions/v1/cache/lookup    exact, then guarded similarity match in the key's organization
POST /functions/v1/cache/store     keep an answer (its response only where the organization opted in)
POST /functions/v1/cache/feedback  a hit was wrong: raise that entry's own threshold
GET  /functions/v1/costs/cache     (user JWT) what the cache did and saved, beside the costs

The prompt text is embedded here and dropped; it is stored only where the organization opted in to
storing prompts.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, error, function_app, json_body, read_limited_body
from tokentra_functions.auth import ApiKeyOrg
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user

router = APIRouter(tags=["semantic cache"])
log = logging.getLogger("tokentra.cache")
MAX_BODY = 1024 * 1024
# Keys made for ingestion may use the cache too: the SDK uses one key for both.
SCOPES = frozenset({"ingest", "gateway"})
Name = Annotated[str, Field(min_length=1, max_length=200)]

_EMBEDDER: Any = None


def embedder() -> Any:
    """The configured embedder, made once per process (the local model loads on first use)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        from tokentra_core.cache import make_embedder

        settings = get_settings()
        _EMBEDDER = make_embedder(settings.cache_embedder, None, settings.cache_embedding_dims,
                                  settings.cache_similarity_threshold)
    return _EMBEDDER


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Annotated[str, Field(min_length=1, max_length=64)]
    model: Name
    messages: list[dict[str, Any]] | str = Field(description="Chat or Anthropic messages, or the Responses input.")
    system: str | list[Any] | None = Field(default=None, description="Anthropic system or Responses instructions.")
    params: dict[str, Any] = Field(default_factory=dict, description="Every other request parameter.")


class StoreRequest(LookupRequest):
    response: dict[str, Any] = Field(description="The provider's response object as JSON.")
    input_tokens: Annotated[int, Field(ge=0, le=100_000_000)]
    output_tokens: Annotated[int, Field(ge=0, le=100_000_000)]
    cached_tokens: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    task_type: Annotated[str, Field(max_length=64)] | None = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: UUID
    similarity: Annotated[float, Field(ge=0, le=1)] = Field(description="The similarity the wrong hit had.")


class LookupResponse(BaseModel):
    outcome: str = Field(description="disabled, not_cacheable, exact, semantic, shadow_exact, shadow_semantic, miss")
    hit: bool
    entry_id: UUID | None = None
    similarity: float | None = None
    response: dict[str, Any] | None = Field(default=None, description="The stored response, on hits only.")
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_usd: float = 0


class StoreResponse(BaseModel):
    outcome: str = Field(description="disabled, not_cacheable, stored (with the response) or shadow (without)")
    entry_id: UUID | None = None


class FeedbackResponse(BaseModel):
    entry_id: UUID
    threshold: float


async def _authorized(request: Request, pool: Pool, model: type[BaseModel]) -> tuple[ApiKeyOrg, Any] | JSONResponse:
    from tokentra_functions.ingest import authorize

    key = await authorize(request, pool, SCOPES)
    if isinstance(key, JSONResponse):
        return key
    body = await read_limited_body(request, MAX_BODY)
    if body is None:
        return error(413, "too_large", f"a request carries at most {MAX_BODY} bytes")
    try:
        return key, model.model_validate(json.loads(body or b"{}"))
    except ValueError as exc:
        if isinstance(exc, ValidationError) and exc.errors():
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            return error(422, "invalid_request", f"{field}: {first['msg']}")
        return error(400, "not_json", "the body is not valid JSON")


_RESPONSES: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 413: {"model": ErrorBody},
                                               422: {"model": ErrorBody}, 429: {"model": ErrorBody}}


@router.post("/cache/lookup", response_model=LookupResponse, responses=_RESPONSES,
             summary="Look a request up in the organization's semantic cache", openapi_extra=json_body(LookupRequest))
async def cache_lookup(request: Request, pool: Pool) -> JSONResponse:
    from tokentra_core.cache import lookup

    got = await _authorized(request, pool, LookupRequest)
    if isinstance(got, JSONResponse):
        return got
    key, body = got
    async with pool.connection() as conn:
        result = await lookup(conn, embedder(), org_id=str(key.org_id), model=body.model, messages=body.messages,
                              system=body.system, params=body.params)
    answer = LookupResponse(outcome=result.outcome, hit=result.hit,
                            entry_id=UUID(result.entry_id) if result.entry_id else None,
                            similarity=result.similarity, response=result.response if result.hit else None,
                            saved_input_tokens=result.saved_input_tokens,
                            saved_output_tokens=result.saved_output_tokens, saved_usd=float(result.saved_usd))
    return JSONResponse(answer.model_dump(mode="json"))


@router.post("/cache/store", response_model=StoreResponse, responses=_RESPONSES,
             summary="Keep an answer in the organization's semantic cache", openapi_extra=json_body(StoreRequest))
async def cache_store(request: Request, pool: Pool) -> JSONResponse:
    from tokentra_core.cache import store

    got = await _authorized(request, pool, StoreRequest)
    if isinstance(got, JSONResponse):
        return got
    key, body = got
    async with pool.connection() as conn:
        result = await store(conn, embedder(), org_id=str(key.org_id), provider=body.provider.lower(),
                             model=body.model, messages=body.messages, response=body.response,
                             input_tokens=body.input_tokens, output_tokens=body.output_tokens,
                             cached_tokens=min(body.cached_tokens, body.input_tokens), system=body.system,
                             params=body.params, task_type=body.task_type)
    entry = UUID(result.entry_id) if result.entry_id else None
    return JSONResponse(StoreResponse(outcome=result.outcome, entry_id=entry).model_dump(mode="json"))


@router.post("/cache/feedback", response_model=FeedbackResponse,
             responses={**_RESPONSES, 404: {"model": ErrorBody}},
             summary="Report a wrong hit: the entry's own threshold rises above its similarity",
             openapi_extra=json_body(FeedbackRequest))
async def cache_feedback(request: Request, pool: Pool) -> JSONResponse:
    from tokentra_core.cache import report_wrong_hit

    got = await _authorized(request, pool, FeedbackRequest)
    if isinstance(got, JSONResponse):
        return got
    key, body = got
    async with pool.connection() as conn:
        threshold = await report_wrong_hit(conn, org_id=str(key.org_id), entry_id=str(body.entry_id),
                                           similarity=body.similarity)
    if threshold is None:
        return error(404, "not_found", "entry_id: no cache entry of this organization has this id")
    return JSONResponse(FeedbackResponse(entry_id=body.entry_id, threshold=threshold).model_dump(mode="json"))


class CacheSavingsQuery(BaseModel):
    start_date: date | None = Field(default=None, description="First UTC day (default: the 1st of this month).")
    end_date: date | None = Field(default=None, description="Last UTC day, inclusive (default: today).")
    org_id: UUID | None = Field(default=None, description="One organization (default: every one you read).")


class CacheSavings(BaseModel):
    start_date: date
    end_date: date
    lookups: int
    exact_hits: int
    semantic_hits: int
    shadow_hits: int = Field(description="Hits in shadow mode: answers the cache would have given.")
    misses: int
    guard_rejections: int = Field(description="Near neighbours the lexical guard refused.")
    stores: int
    hit_rate: float
    saved_input_tokens: int
    saved_output_tokens: int
    saved_usd: float
    shadow_saved_usd: float = Field(description="What storing responses would have saved (shadow hits).")


@router.get("/costs/cache", response_model=CacheSavings,
            responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}},
            summary="Semantic cache lookups, hits, misses, tokens and money saved over a day range")
async def cache_savings(user: CurrentUser, pool: Pool, q: Annotated[CacheSavingsQuery, Query()]) -> JSONResponse:
    today = datetime.now(UTC).date()
    end = q.end_date or today
    start = q.start_date or end.replace(day=1)
    if end < start:
        return error(422, "invalid_request", "end_date: must not be before start_date")
    async with as_user(pool, user) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute("select * from public.cache_savings(%s, %s, %s)", (start, end, q.org_id))
        row = await cur.fetchone()
    if row is None:  # an aggregate always answers one row
        raise RuntimeError("public.cache_savings returned no row")
    body = CacheSavings(start_date=start, end_date=end, **row)
    return JSONResponse(body.model_dump(mode="json"))


app = function_app(router, title="TokenTRA semantic cache")
