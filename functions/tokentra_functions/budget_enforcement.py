"""Budget enforcement for API keys (the SDK).

POST /functions/v1/budget/reserve: strict mode. Reserve a call's maximum cost against every hard budget
    covering its attribution; admitted only while spent + reserved + requested <= limit. The usage event
    that reports the call carries `reservation_id`, which commits it (see settle_budgets, run by ingest).
POST /functions/v1/budget/check: eventual mode. Whether the attribution's hard budgets still have room.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokentra_core.db import one_async
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, autocommit, error, function_app, invalid_fields, json_body, read_limited_body
from tokentra_functions._inputs import Text
from tokentra_functions.auth import ApiKeyOrg, authorize
from tokentra_functions.models import ErrorBody

router = APIRouter(tags=["budget enforcement"])
log = logging.getLogger("tokentra.budgets")
MAX_BODY = 16 * 1024
Tag = Annotated[Text, Field(min_length=1, max_length=200)]
# Keys made for ingestion may enforce budgets too: the SDK uses one key for both.
SCOPES = frozenset({"ingest", "budgets"})


class Attribution(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    team: Tag | None = None
    project: Tag | None = None
    feature: Tag | None = None
    user_id: Tag | None = None

    def tags(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True, include={"team", "project", "feature", "user_id"})


class ReserveRequest(Attribution):
    provider: Annotated[Text, Field(min_length=1, max_length=64)]
    model: Tag
    input_tokens: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    max_tokens: Annotated[int, Field(ge=1, le=100_000_000)] | None = Field(
        default=None, description="Output ceiling of the call; the model's output limit when absent."
    )


class ReserveResponse(BaseModel):
    allowed: bool
    reservation_id: UUID | None = Field(
        description="Send it as the usage event's reservation_id. None when no hard budget covers the call."
    )
    remaining: Decimal | None = Field(description="USD left on the tightest covering budget after this call.")
    budget_id: UUID | None = Field(description="The budget that refused the call, or the tightest one.")
    amount: Decimal = Field(description="The call's maximum cost in USD, as reserved.")


class CheckRequest(Attribution):
    model: Tag | None = None


class CheckResponse(BaseModel):
    allowed: bool
    remaining: Decimal | None
    budget_id: UUID | None
    status: str = Field(description="ok or exceeded, for the tightest covering budget.")


async def _authorized_body(
    request: Request, pool: Pool, model: type[BaseModel]
) -> tuple[ApiKeyOrg, Any] | JSONResponse:
    """The key and the validated body, or the 401/413/422/429 answer (authentication first)."""

    key = await authorize(request, pool, SCOPES)
    if isinstance(key, JSONResponse):
        return key
    body = await read_limited_body(request, MAX_BODY)
    if body is None:
        return error(413, "too_large", f"a request carries at most {MAX_BODY} bytes")
    try:
        # pydantic's own JSON parser: no RecursionError on a deeply nested body, unlike json.loads.
        return key, model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["type"] == "json_invalid" for e in errors):
            return error(400, "not_json", "the body is not valid JSON")
        return invalid_fields(list(errors))


@router.post(
    "/budget/reserve",
    response_model=ReserveResponse,
    openapi_extra=json_body(ReserveRequest),
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Strict mode: reserve a call's maximum cost before making it",
)
async def reserve(request: Request, pool: Pool) -> JSONResponse:
    got = await _authorized_body(request, pool, ReserveRequest)
    if isinstance(got, JSONResponse):
        return got
    key, body = got
    settings = get_settings()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select * from private.reserve_budget(%s, %s, %s, %s, %s, %s, %s, make_interval(secs => %s), %s)",
            (
                key.org_id,
                key.key_id,
                body.provider.lower(),
                body.model,
                body.input_tokens,
                body.max_tokens,
                Jsonb(body.tags()),
                settings.budget_reservation_ttl_seconds,
                settings.budget_default_max_output_tokens,
            ),
        )
        row = await one_async(cur)  # reserve_budget answers one row, allowed or not
    result = ReserveResponse(
        allowed=row["allowed"],
        reservation_id=row["reservation_id"],
        remaining=row["remaining"],
        budget_id=row["budget_id"],
        amount=row["amount_usd"],
    )
    if not result.allowed:
        log.info("reservation refused org=%s budget=%s", key.org_id, result.budget_id)
    return JSONResponse(result.model_dump(mode="json"))


@router.post(
    "/budget/check",
    response_model=CheckResponse,
    openapi_extra=json_body(CheckRequest, required=False),
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Eventual mode: may a call with this attribution go ahead?",
)
async def check(request: Request, pool: Pool) -> JSONResponse:
    got = await _authorized_body(request, pool, CheckRequest)
    if isinstance(got, JSONResponse):
        return got
    key, body = got
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select * from private.check_budgets(%s, %s, %s, %s)",
            (key.org_id, key.key_id, Jsonb(body.tags()), body.model),
        )
        row = await one_async(cur)  # check_budgets is an aggregate: one row, budgets or none
    return JSONResponse(CheckResponse(**row).model_dump(mode="json"))


async def settle_budgets(
    pool: Pool, key: ApiKeyOrg, rows: list[dict], headers: dict[str, str] | None
) -> None:
    """After ingest stored `rows` (accepted or duplicate events): commit the reservations they carry,
    and, when `headers` is given, fill it with the batch's budget status. Never raises: the events are
    stored whatever happens here (an uncommitted reservation expires with its TTL)."""
    reports = [
        {"reservation_id": r["reservation_id"], "request_id": r["request_id"]}
        for r in rows
        if r.get("reservation_id")
    ]
    try:
        async with autocommit(pool) as conn:
            if reports:
                await conn.execute(
                    "select private.commit_budget_reservations(%s, %s)", (key.org_id, Jsonb(reports))
                )
            if headers is not None:
                # Each distinct attribution once, compared as a tuple (no JSON round trip per event).
                attributions = {(r.get("team"), r.get("project"), r.get("feature"), r.get("end_user_id"),
                                 r.get("model")) for r in rows}
                cur = await conn.execute(
                    "select * from private.batch_budget_status(%s, %s, %s)",
                    (key.org_id, key.key_id, Jsonb([
                        {"team": team, "project": project, "feature": feature, "user_id": user, "model": model}
                        for team, project, feature, user, model in attributions
                    ])),
                )
                status = await cur.fetchone()
                headers["X-TokenTRA-Budget-Status"] = status["status"] if status else "none"
                if status:
                    headers["X-TokenTRA-Budget-Id"] = str(status["budget_id"])
                    headers["X-TokenTRA-Budget-Remaining"] = str(status["remaining"])
    except Exception:
        log.exception("settling budgets after ingest failed org=%s", key.org_id)


app = function_app(router, title="TokenTRA budget enforcement")
