"""GET /functions/v1/usage/timeseries: per-hour or per-day series for charts, optionally per dimension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, field_validator

from tokentra_functions._analytics import (
    DIMENSIONS,
    Fill,
    Filters,
    csv_response,
    json_response,
    parse_exact,
    run_envelope,
    wants_csv,
)
from tokentra_functions._app import Pool, function_app
from tokentra_functions._db_errors import invalid
from tokentra_functions._inputs import Moment
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, forbidden_unless

router = APIRouter(tags=["analytics"])
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_POINTS = {"hour": 31 * 24, "day": 400}
ALIASES = {"api_key": "api_key_id", "org": "org_id"}
METRICS = (
    "cost_usd",
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "avg_latency_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


class TimeseriesQuery(Filters):
    start: Moment | None = Field(default=None, description="Start (default: 24 hours or 30 days back).")
    end: Moment | None = Field(default=None, description="End, exclusive (default: now).")
    granularity: Literal["hour", "day"] = "hour"
    group_by: str | None = Field(
        default=None, description=f"One series per value of one of: {', '.join(DIMENSIONS)}."
    )

    @field_validator("group_by")
    @classmethod
    def one_dimension(cls, value: str | None) -> str | None:
        value = ALIASES.get(value, value) if value else None
        if value is not None and value not in DIMENSIONS:
            raise ValueError(f"must be one of {', '.join(DIMENSIONS)}")
        return value

    @field_validator("start", "end")
    @classmethod
    def aware(cls, value: datetime | None) -> datetime | None:
        # A time without an offset is read as UTC, as Supabase's APIs do.
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def floor(t: datetime, granularity: str) -> datetime:
    t = t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if granularity == "day" else t


def window(q: TimeseriesQuery) -> tuple[datetime, datetime] | str:
    """[start, end) widened to whole buckets, or why it is refused (field: message)."""
    step = STEP[q.granularity]
    end = q.end or datetime.now(UTC)
    start = q.start or end - (timedelta(days=30) if q.granularity == "day" else timedelta(hours=24))
    if end <= start:
        return "end: must be after start"
    start = floor(start, q.granularity)
    end = floor(end, q.granularity) + (step if floor(end, q.granularity) < end else timedelta(0))
    if (end - start) / step > MAX_POINTS[q.granularity]:
        return f"start: at most {MAX_POINTS[q.granularity]} {q.granularity}s a series"
    return start, end


# An empty bucket: no cost, no calls; latency is unknown, not zero.
ZERO: dict[str, Any] = {
    "cost_usd": 0, "requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0,
    "avg_latency_ms": None, "latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None,
}


class Point(BaseModel):
    bucket: datetime
    cost_usd: float
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    avg_latency_ms: float | None
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    latency_p99_ms: int | None


class Series(BaseModel):
    data: list[Point]
    meta: dict[str, Any]


@router.get(
    "/usage/timeseries",
    response_model=Series,
    responses={
        401: {"model": ErrorBody},
        422: {"model": ErrorBody},
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"},
    },
    summary="Cost, requests, tokens and latency percentiles per hour or day",
)
async def timeseries(
    request: Request, user: CurrentUser, pool: Pool, q: Annotated[TimeseriesQuery, Query()]
) -> Response:
    span = window(q)
    if isinstance(span, str):
        field, _, reason = span.partition(": ")
        return invalid(field, reason)
    if (refused := await forbidden_unless(pool, user, "usage.read", q.org_id)) is not None:
        return refused
    text = await run_envelope(
        pool,
        user,
        "usage_timeseries",
        {
            "start_at": span[0],
            "end_at": span[1],
            "granularity": q.granularity,
            "group_by": q.group_by,
            **q.sql_args(),
        },
        # A chart needs every bucket: hours or days without usage are zero points, in every series.
        fill=Fill(bucket_key="bucket", start=span[0], end=span[1], step=STEP[q.granularity],
                  dims=[q.group_by] if q.group_by else [], zero=ZERO),
    )
    text = text or '{"data": [], "meta": {}}'  # the function answered null: no points, in JSON and in CSV
    if not wants_csv(request):
        return json_response(text)
    columns = ["bucket", *([q.group_by] if q.group_by else []), *METRICS]
    return csv_response(columns, parse_exact(text)["data"], f"usage_{q.granularity}.csv")


app = function_app(router, title="TokenTRA usage timeseries")
