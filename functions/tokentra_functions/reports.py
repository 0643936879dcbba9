"""GET /functions/v1/reports: the weekly executive summaries the `weekly_reports` job wrote, newest week
first, a page at a time; /reports/{id} with the evidence its figures come from. A report restates usage,
anomalies, budgets and recommendations, so only members whose role reads all four read it (RLS; a
viewer is refused)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_functions._analytics import json_response, run_envelope
from tokentra_functions._app import Envelope, Pool, error, function_app
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, forbidden_unless

router = APIRouter(tags=["intelligence"])
# What a report restates: reading one needs every one of these (the RLS policy on public.reports agrees).
READ_PERMISSIONS = ("usage.read", "anomalies.read", "budgets.read", "recommendations.read")
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                           422: {"model": ErrorBody}}


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: UUID | None = Field(default=None, description="One organization (default: every one you belong to).")
    limit: int = Field(default=20, ge=1, le=100, description="Reports per page.")
    offset: int = Field(default=0, ge=0, le=100_000, description="Reports to skip (newest first).")


class ReportSummary(BaseModel):
    id: UUID
    org_id: UUID
    period_start: datetime = Field(description="Monday 00:00 UTC of the week reported.")
    period_end: datetime
    headline: str
    narrative: str
    method: Literal["llm", "template"] = Field(description="llm: written by the model, every number checked; "
                                                           "template: built from the evidence.")
    grounded: bool = Field(description="Every number of headline and narrative is in the evidence.")
    fallback_reason: str | None
    model: str | None
    cost_usd: float = Field(description="What writing it cost (AI spend), in USD.")
    created_at: datetime


class Report(ReportSummary):
    note: str | None
    provider: str | None
    llm_calls: int
    input_tokens: int
    output_tokens: int
    rejected: list[dict[str, Any]]
    evidence: dict[str, Any] = Field(description="The figures the report cites (weekly_report_evidence).")


class PageMeta(BaseModel):
    limit: int
    offset: int
    total: int


class ReportPage(BaseModel):
    data: list[ReportSummary]
    meta: PageMeta


@router.get(
    "/reports",
    response_model=ReportPage,
    responses=ERRORS,
    summary="Weekly reports: each week's spend and change, drivers, anomalies, budgets at risk, recommendations",
)
async def reports(user: CurrentUser, pool: Pool, q: Annotated[ReportQuery, Query()]) -> Response:
    for permission in READ_PERMISSIONS:
        if (refused := await forbidden_unless(pool, user, permission, q.org_id)) is not None:
            return refused
    empty = json.dumps({"data": [], "meta": PageMeta(limit=q.limit, offset=q.offset, total=0).model_dump()})
    return json_response(
        await run_envelope(pool, user, "report_list", {"org": q.org_id, "max_rows": q.limit, "skip": q.offset})
        or empty
    )


@router.get(
    "/reports/{report_id}",
    response_model=Envelope[Report],
    responses={**ERRORS, 404: {"model": ErrorBody}},
    summary="One weekly report, with the evidence its figures come from",
)
async def report(report_id: UUID, user: CurrentUser, pool: Pool) -> Response:
    text = await run_envelope(pool, user, "report_of", {"report": report_id}, whole=True)
    if text is None:
        return error(404, "not_found", f"report_id: no report {report_id} that you may read")
    return json_response(text)


app = function_app(router, title="TokenTRA reports")
