"""GET /functions/v1/costs: cost and token totals per dimension and day/hour (seed 000 §10.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tokentra_functions._analytics import (
    DIMENSIONS,
    Filters,
    csv_response,
    json_response,
    parse_exact,
    run_json,
    wants_csv,
)
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser

router = APIRouter(tags=["analytics"])

MAX_DAYS = 400  # the usage retention: nothing older exists
MAX_HOURLY_DAYS = 31
TOTALS = (
    "total_cost",
    "total_requests",
    "total_input_tokens",
    "total_output_tokens",
    "total_cached_tokens",
    "total_cache_write_tokens",
    "total_reasoning_tokens",
    "total_errors",
    "total_timeouts",
    "total_rate_limited",
    "total_retries",
    "total_cache_hits",
    "unpriced_requests",
)
# `api_key` is what people type; the rollups call it api_key_id.
ALIASES = {"api_key": "api_key_id", "org": "org_id", "date": "day"}


def _today() -> date:
    return datetime.now(UTC).date()


class CostsQuery(Filters):
    start_date: date | None = Field(
        default=None, description="First UTC day (default: the 1st of this month)."
    )
    end_date: date | None = Field(default=None, description="Last UTC day, inclusive (default: today).")
    group_by: str | None = Field(
        default=None, description=f"Comma-separated: {', '.join(DIMENSIONS)}, and day or hour."
    )
    granularity: Literal["total", "day", "hour"] = Field(default="total", validate_default=True)

    @field_validator("group_by")
    @classmethod
    def known_dimensions(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [ALIASES.get(p.strip(), p.strip()) for p in value.split(",") if p.strip()]
        unknown = [n for n in names if n not in (*DIMENSIONS, "day", "hour")]
        if unknown:
            raise ValueError(f"unknown dimension {unknown[0]!r}; use {', '.join(DIMENSIONS)}, day or hour")
        return ",".join(dict.fromkeys(names))

    @field_validator("granularity")
    @classmethod
    def agrees_with_group_by(cls, value: str, info: ValidationInfo) -> str:
        names = (info.data.get("group_by") or "").split(",")
        buckets = [n for n in names if n in ("day", "hour")]
        if len(buckets) > 1 or (buckets and value not in ("total", buckets[0])):
            raise ValueError("day and hour in group_by exclude each other and must agree with granularity")
        return buckets[0] if buckets else value

    def dimensions_and_buckets(self) -> list[str]:
        return self.group_by.split(",") if self.group_by else []

    @property
    def dimensions(self) -> list[str]:
        return [n for n in self.dimensions_and_buckets() if n in DIMENSIONS]


class CostRange(BaseModel):
    start: date
    end: date


def resolve_range(q: CostsQuery) -> CostRange | str:
    """The inclusive day range, or the reason it is refused (field: message)."""
    today = _today()
    end = q.end_date or today
    start = q.start_date or (end.replace(day=1) if q.end_date else today.replace(day=1))
    if end < start:
        return "end_date: must not be before start_date"
    if (end - start).days + 1 > MAX_DAYS:
        return f"end_date: a range holds at most {MAX_DAYS} days"
    if q.granularity == "hour" and (end - start).days + 1 > MAX_HOURLY_DAYS:
        return f"granularity: hourly ranges hold at most {MAX_HOURLY_DAYS} days"
    return CostRange(start=start, end=end)


Day = date  # the field below is named `date`, as in the response


class CostRow(BaseModel):
    """One group: the grouped dimensions (and date or hour), then the totals. Numbers are exact decimals."""

    date: Day | None = None
    hour: datetime | None = None
    model: str | None = None
    total_cost: float
    total_requests: int
    total_input_tokens: int
    total_output_tokens: int


class CostsMeta(BaseModel):
    start_date: date
    end_date: date
    currency: str = "USD"
    granularity: str
    group_by: list[str]


class CostsResponse(BaseModel):
    data: list[CostRow]
    meta: CostsMeta


def _invalid(message: str) -> Response:
    return error(422, "invalid_request", message)


@router.get(
    "/costs",
    response_model=CostsResponse,
    responses={
        401: {"model": ErrorBody},
        422: {"model": ErrorBody},
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"},
    },
    summary="Cost and token totals per dimension and day or hour",
)
async def costs(
    request: Request, user: CurrentUser, pool: Pool, q: Annotated[CostsQuery, Query()]
) -> Response:
    span = resolve_range(q)
    if isinstance(span, str):
        return _invalid(span)
    text = await run_json(
        pool,
        user,
        "cost_breakdown",
        {
            "start_date": span.start,
            "end_date": span.end,
            "group_by": q.dimensions,
            "granularity": q.granularity,
            **q.sql_args(),
        },
    )
    if not wants_csv(request):
        return json_response(text)
    bucket = [] if q.granularity == "total" else [q.granularity if q.granularity == "hour" else "date"]
    return csv_response(
        [*bucket, *q.dimensions, *TOTALS], parse_exact(text)["data"], f"costs_{span.start}_{span.end}.csv"
    )


app = function_app(router, title="TokenTRA costs")
