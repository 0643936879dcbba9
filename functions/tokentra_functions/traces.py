"""GET /functions/v1/costs/traces: cost per trace or per session, summed from raw usage rows over a
bounded range (at most 31 days) under the signed-in user's RLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_functions._analytics import json_response, run_json
from tokentra_functions._app import Pool, function_app
from tokentra_functions._db_errors import db_error
from tokentra_functions._inputs import Moment, Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser

router = APIRouter(tags=["analytics"])
Id = Annotated[Text, Field(min_length=1, max_length=200)]


class TraceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    start: Moment | None = Field(default=None, description="Default: 24 hours before end.")
    end: Moment | None = Field(default=None, description="Default: now. At most 31 days after start.")
    group_by: Literal["trace", "session"] = "trace"
    org_id: UUID | None = None
    trace_id: Id | None = None
    session_id: Id | None = None
    limit: int = Field(default=100, ge=1, le=1000)


@router.get(
    "/costs/traces",
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Cost per trace or per session (requests, errors, tokens, first and last call, models), most "
            "expensive first",
)
async def trace_costs(user: CurrentUser, pool: Pool, q: Annotated[TraceQuery, Query()]) -> Response:
    end = q.end or datetime.now(UTC)
    start = q.start or end - timedelta(days=1)
    try:
        text = await run_json(pool, user, "trace_costs", {
            "start_at": start, "end_at": end, "group_by": q.group_by, "org": q.org_id, "trace_id": q.trace_id,
            "session_id": q.session_id, "max_rows": q.limit,
        })
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return json_response(text)


app = function_app(router, title="TokenTRA trace costs")
