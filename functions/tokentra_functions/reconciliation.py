"""Reconciliation: what we tracked against what the providers billed, per day, provider and model, with
every gap split into causes from a fixed list (public.reconciliation_report), and the one-click re-price
of a model whose gap is ours (public.reprice_from_bill). The reconciliation job computes the rows; these
handlers only read them, or ask the database to re-price, under the caller's role."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tokentra_core.db import one_async
from tokentra_functions._analytics import json_response, run_envelope
from tokentra_functions._app import Pool, envelope, function_app
from tokentra_functions._db_errors import db_error, invalid
from tokentra_functions._inputs import Day, Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user, forbidden_unless

router = APIRouter(tags=["reconciliation"])

MAX_DAYS = 400  # the usage retention: nothing older is tracked
DIMENSIONS = ("org_id", "day", "provider", "canonical_model")
ALIASES = {"date": "day", "org": "org_id", "model": "canonical_model"}
Provider = Literal["openai", "anthropic"]
Name = Annotated[Text, Field(min_length=1, max_length=200)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody},
}


def _today() -> date:
    return datetime.now(UTC).date()


class ReconciliationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID | None = Field(default=None, description="One organization (default: every one you can read).")
    start_date: Day | None = Field(default=None, description="First UTC day (default: the 1st of end_date's month).")
    end_date: Day | None = Field(default=None, description="Last UTC day, inclusive (default: today).")
    provider: Provider | None = None
    canonical_model: Name | None = Field(default=None, description="One model identity, as /costs groups it.")
    group_by: str | None = Field(
        default=None, description=f"Comma-separated: {', '.join(DIMENSIONS)} (default: day,provider,canonical_model)."
    )

    @field_validator("group_by")
    @classmethod
    def known_dimensions(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [ALIASES.get(p.strip(), p.strip()) for p in value.split(",") if p.strip()]
        unknown = [n for n in names if n not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown dimension {unknown[0]!r}; use {', '.join(DIMENSIONS)}")
        return ",".join(dict.fromkeys(names))

    def dimensions(self) -> list[str]:
        if self.group_by is None:
            return ["day", "provider", "canonical_model"]
        return self.group_by.split(",") if self.group_by else []

    def span(self) -> tuple[date, date] | str:
        """The inclusive day range, or why it is refused (field: reason)."""
        end = self.end_date or _today()
        start = self.start_date or end.replace(day=1)
        if end < start:
            return "end_date: must not be before start_date"
        if (end - start).days + 1 > MAX_DAYS:
            return f"end_date: a range holds at most {MAX_DAYS} days"
        return start, end


_Date = date  # the field below is named `date`, as in the response


class ReconciliationRow(BaseModel):
    """One group: its dimensions, both costs, the gap and the gap by cause (exact decimals)."""

    date: _Date | None = None
    provider: str | None = None
    canonical_model: str | None = None
    org_id: UUID | None = None
    tracked_cost: float
    billed_cost: float
    gap: float = Field(description="billed_cost - tracked_cost.")
    tracked_tokens: dict[str, int | None]
    billed_tokens: dict[str, int | None]
    causes: dict[str, float] = Field(description="Cause -> USD; the amounts add up to gap.")


class SyncStatus(BaseModel):
    """How far one provider report of a connection is synced: days after synced_through are not billed yet,
    not a gap."""

    org_id: UUID
    connection_id: UUID
    provider: str
    connection_name: str
    endpoint: str
    synced_through: datetime | None = Field(description="Reports are read up to here (exclusive); null: never.")
    last_success_at: datetime | None
    in_progress: bool = Field(description="A window is being read (resumed by the next run if cut).")
    last_error: str | None = Field(description="Why the last attempt failed (cleared by a success).")
    last_error_at: datetime | None
    consecutive_failures: int
    non_usd_cost_lines: int = Field(description="Cost lines billed in another currency, left out of billed_cost.")
    non_usd_currencies: list[str]


class ReconciliationMeta(BaseModel):
    start_date: date
    end_date: date
    currency: str = "USD"
    group_by: list[str]
    totals: dict[str, Any]
    causes: list[dict[str, Any]] = Field(description="The fixed cause list: cause, ours (a re-price fixes it), "
                                                     "definition.")
    series: list[dict[str, Any]] = Field(description="Every day of the range: tracked_cost, billed_cost, gap and "
                                                     "one amount per cause (zero-filled).")
    sync: list[SyncStatus] = Field(default_factory=list, description="Per connection and report: how far the "
                                   "provider's bill is synced, and the last failure.")


class ReconciliationResponse(BaseModel):
    data: list[ReconciliationRow]
    meta: ReconciliationMeta


class RepriceIn(BaseModel):
    """Set the organization's price for a model from the provider's bill, where the gap is ours."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID
    provider: Provider
    canonical_model: Name
    start_date: Day | None = Field(default=None, description="First day to look at (default: 31 days back).")
    end_date: Day | None = Field(default=None, description="Last day to look at (default: today).")


@router.get("/reconciliation", response_model=ReconciliationResponse, responses=ERRORS,
            summary="Tracked against billed cost per day, provider and model, with the gap by cause")
async def reconciliation(user: CurrentUser, pool: Pool,
                         q: Annotated[ReconciliationQuery, Query()]) -> Response:
    span = q.span()
    if isinstance(span, str):
        field, _, reason = span.partition(": ")
        return invalid(field, reason)
    if (refused := await forbidden_unless(pool, user, "usage.read", q.org_id)) is not None:
        return refused
    async with as_user(pool, user) as conn:
        cur = await conn.execute("select public.reconciliation_sync_status(org => %s) as status", (q.org_id,))
        sync = [s for s in (await one_async(cur))["status"] if q.provider in (None, s["provider"])]
    text = await run_envelope(pool, user, "reconciliation_report", {
        "org": q.org_id, "start_date": span[0], "end_date": span[1], "provider": q.provider,
        "canonical_model": q.canonical_model, "group_by": q.dimensions(),
    }, meta={"sync": sync})
    return json_response(text or '{"data": [], "meta": {}}')


@router.post("/reconciliation/reprice", status_code=201, responses=ERRORS,
             summary="Set the organization's price for a model from what the provider billed, and reconcile again")
async def reprice(body: RepriceIn, user: CurrentUser, pool: Pool) -> JSONResponse:
    if body.start_date and body.end_date and body.end_date < body.start_date:
        return invalid("end_date", "must not be before start_date")
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                "select public.reprice_from_bill(org => %s, provider => %s, canonical_model => %s, "
                "first_day => %s, last_day => %s)::text as result",
                (body.org_id, body.provider, body.canonical_model, body.start_date, body.end_date),
            )
            row = await one_async(cur)
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return envelope(json.loads(row["result"]), {"currency": "USD", "unit": "per million tokens"}, status=201)


app = function_app(router, title="TokenTRA reconciliation")
