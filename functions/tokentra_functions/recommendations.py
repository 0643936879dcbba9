"""/functions/v1/optimization/recommendations: list (by savings, with filters), apply, dismiss.

Each call runs one SQL function as the signed-in user, so RLS and the column grants decide who may read,
apply (creating the suggested routing rule) or dismiss; refusals come back as 403, 404 or 422."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.db import one_async
from tokentra_functions._analytics import json_response, run_envelope
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions._db_errors import db_error
from tokentra_functions._inputs import Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user, forbidden_unless

router = APIRouter(prefix="/optimization", tags=["intelligence"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


class RecommendationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID | None = None
    status: Literal["open", "under_review", "applied", "dismissed", "expired"] | None = None
    category: Text | None = Field(default=None, max_length=64)
    scope_type: Literal["feature", "team", "project", "api_key", "model", "end_user"] | None = None
    # Decimal: the SQL function takes numeric, which a float parameter (double precision) does not match.
    min_savings: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"), allow_inf_nan=False)
    limit: int = Field(default=100, ge=1, le=1000)


class ApplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traffic_share: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of the matching traffic the rule takes (below 1: an A/B test).",
    )


class DismissBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: Text = Field(min_length=1, max_length=1000)


@router.get("/recommendations", responses=ERRORS, summary="Recommendations, largest monthly savings first")
async def recommendations(
    user: CurrentUser, pool: Pool, q: Annotated[RecommendationQuery, Query()]
) -> Response:
    if (refused := await forbidden_unless(pool, user, "recommendations.read", q.org_id)) is not None:
        return refused
    return json_response(
        await run_envelope(
            pool,
            user,
            "recommendation_list",
            {
                "org": q.org_id,
                "status": q.status,
                "category": q.category,
                "scope_type": q.scope_type,
                "min_savings": q.min_savings,
                "max_rows": q.limit,
            },
        )
        or '{"data": [], "meta": {}}'  # the function answered null: no recommendations
    )


async def _call(pool, user, sql: str, args: tuple) -> Response:
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(sql, args)
            row = await one_async(cur)  # a select of one function call answers one row
    except psycopg.Error as exc:
        if exc.sqlstate == "P0002":
            return error(404, "not_found", str(exc.diag.message_primary))
        if exc.sqlstate == "22023":
            return error(422, "invalid_request", str(exc.diag.message_primary))
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return json_response(json.dumps({"data": row["result"], "meta": {}}))


@router.post(
    "/recommendations/{rec_id}/apply",
    responses=ERRORS,
    summary="Apply: create the suggested routing rule (optionally on a traffic share), measure savings",
)
async def apply(rec_id: UUID, user: CurrentUser, pool: Pool, body: ApplyBody | None = None) -> Response:
    share = (body or ApplyBody()).traffic_share
    return await _call(
        pool, user, "select public.apply_recommendation(%s, %s::numeric) as result", (rec_id, share)
    )


@router.post(
    "/recommendations/{rec_id}/dismiss",
    responses=ERRORS,
    summary="Dismiss with a reason: the engine will not raise that pattern again",
)
async def dismiss(rec_id: UUID, body: DismissBody, user: CurrentUser, pool: Pool) -> Response:
    return await _call(
        pool, user, "select public.dismiss_recommendation(%s, %s) as result", (rec_id, body.reason)
    )


@router.get(
    "/recommendations/{rec_id}/explanation",
    responses=ERRORS,
    summary="The recommendation's explanation: prose, its source (llm or template), cost, and its evidence",
)
async def explanation(rec_id: UUID, user: CurrentUser, pool: Pool) -> Response:
    text = await run_envelope(pool, user, "explanation_of", {"recommendation": rec_id}, whole=True)
    if text is None:
        return error(404, "not_found", f"rec_id: no explanation of recommendation {rec_id} that you may read")
    return json_response(text)


app = function_app(router, title="TokenTRA recommendations")
