"""GET /functions/v1/costs: cost and token totals per dimension and day/hour (seed 000 §10.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from tokentra_functions._analytics import (
    DIMENSIONS,
    Fill,
    Filters,
    Name,
    csv_response,
    json_response,
    parse_exact,
    run_envelope,
    wants_csv,
)
from tokentra_functions._app import Pool, function_app
from tokentra_functions._db_errors import invalid
from tokentra_functions._inputs import Day as QueryDay
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, forbidden_unless

router = APIRouter(tags=["analytics"])

MAX_DAYS = 400  # the usage retention: nothing older exists
MAX_HOURLY_DAYS = 31
# End users are not a rollup dimension: breakdowns by or filtered on one read raw rows, this many days at most.
MAX_END_USER_DAYS = 31
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
    "total_response_cache_hits",
    "total_cache_hits",
    "unpriced_requests",
)
# `api_key` is what people type; the rollups call it api_key_id.
ALIASES = {"api_key": "api_key_id", "org": "org_id", "date": "day", "user": "end_user_id", "end_user": "end_user_id"}
GROUPABLE = (*DIMENSIONS, "end_user_id")


def _today() -> date:
    return datetime.now(UTC).date()


class CostsQuery(Filters):
    start_date: QueryDay | None = Field(
        default=None, description="First UTC day (default: the 1st of this month)."
    )
    end_date: QueryDay | None = Field(default=None, description="Last UTC day, inclusive (default: today).")
    group_by: str | None = Field(
        default=None, description=f"Comma-separated: {', '.join(GROUPABLE)}, and day or hour."
    )
    granularity: Literal["total", "day", "hour"] = Field(default="total", validate_default=True)
    end_user_id: Name | None = Field(
        default=None, description=f"One end user (the SDK's user_id tag); read from raw rows, at most "
                                  f"{MAX_END_USER_DAYS} days."
    )

    @field_validator("group_by")
    @classmethod
    def known_dimensions(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [ALIASES.get(p.strip(), p.strip()) for p in value.split(",") if p.strip()]
        unknown = [n for n in names if n not in (*GROUPABLE, "day", "hour")]
        if unknown:
            raise ValueError(f"unknown dimension {unknown[0]!r}; use {', '.join(GROUPABLE)}, day or hour")
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
        return [n for n in self.dimensions_and_buckets() if n in GROUPABLE]

    @property
    def by_end_user(self) -> bool:
        return "end_user_id" in self.dimensions or self.end_user_id is not None


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
    if q.by_end_user and (end - start).days + 1 > MAX_END_USER_DAYS:
        return f"end_date: a breakdown by end user reads raw rows and holds at most {MAX_END_USER_DAYS} days"
    return CostRange(start=start, end=end)


Day = date  # the field below is named `date`, as in the response


class CostRow(BaseModel):
    """One group: the grouped dimensions (and date or hour), then the totals. Numbers are exact decimals."""

    date: Day | None = None
    hour: datetime | None = None
    model: str | None = None
    canonical_model: str | None = None
    end_user_id: str | None = None
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
    source: str | None = Field(default=None, description="`raw` when read from raw rows (end users).")


class CostsResponse(BaseModel):
    data: list[CostRow]
    meta: CostsMeta


def _invalid(message: str) -> Response:
    field, _, reason = message.partition(": ")
    return invalid(field, reason)


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
    if (refused := await forbidden_unless(pool, user, "usage.read", q.org_id)) is not None:
        return refused
    args = {
        "start_date": span.start,
        "end_date": span.end,
        "group_by": q.dimensions,
        "granularity": q.granularity,
        **q.sql_args(),
    }
    if q.by_end_user:
        args["end_user_id"] = q.end_user_id
    fill = None
    if q.granularity != "total":
        first = datetime.combine(span.start, time(), UTC)
        fill = Fill(
            bucket_key="date" if q.granularity == "day" else "hour",
            start=first,
            end=datetime.combine(span.end, time(), UTC) + timedelta(days=1),
            step=timedelta(days=1) if q.granularity == "day" else timedelta(hours=1),
            dims=q.dimensions,
            zero=dict.fromkeys(TOTALS, 0),
        )
    text = await run_envelope(
        pool, user, "cost_breakdown_raw" if q.by_end_user else "cost_breakdown", args, fill=fill
    )
    text = text or '{"data": [], "meta": {}}'  # the function answered null: no rows, in JSON and in CSV
    if not wants_csv(request):
        return json_response(text)
    bucket = [] if q.granularity == "total" else [q.granularity if q.granularity == "hour" else "date"]
    return csv_response(
        [*bucket, *q.dimensions, *TOTALS], parse_exact(text)["data"], f"costs_{span.start}_{span.end}.csv"
    )


app = function_app(router, title="TokenTRA costs")
