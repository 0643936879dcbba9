"""GET /functions/v1/dashboard/overview: month-to-date spend, its trend, and who spends it."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_functions._analytics import csv_response, json_response, parse_exact, run_envelope, wants_csv
from tokentra_functions._app import Envelope, Pool, function_app
from tokentra_functions.models import ErrorBody, Money
from tokentra_functions.user_auth import CurrentUser, forbidden_unless

router = APIRouter(tags=["analytics"])
CSV_COLUMNS = ("section", "key", "cost_usd", "requests", "value")
TOP_SECTIONS = {
    "spend_by_day": "date",
    "spend_by_provider": "provider",
    "top_teams": "team",
    "top_features": "feature",
    "top_api_keys": "api_key_id",
    "top_users": "end_user_id",
}


class OverviewQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: UUID | None = Field(
        default=None, description="One organization (default: every one you can read)."
    )


class Period(BaseModel):
    start: date
    end: date
    previous_start: date
    previous_end: date


class Overview(BaseModel):
    """Month-to-date (UTC). Money is an exact decimal in USD."""

    period: Period
    currency: str
    spend: Money
    previous_spend: Money
    spend_change_pct: Money | None
    requests: int
    errors: int
    active_providers: int
    pending_recommendations: int
    potential_monthly_savings: Money
    active_alerts: int
    spend_by_day: list[dict[str, Any]]
    spend_by_provider: list[dict[str, Any]]
    top_teams: list[dict[str, Any]]
    top_features: list[dict[str, Any]]
    top_api_keys: list[dict[str, Any]]
    top_users: list[dict[str, Any]]


def flatten(overview: dict[str, Any]) -> list[dict[str, Any]]:
    """The overview as CSV rows: one per scalar figure, then one per entry of each breakdown."""
    rows: list[dict[str, Any]] = [
        {"section": "period", "key": k, "value": v} for k, v in overview["period"].items()
    ]
    rows += [
        {"section": "summary", "key": k, "value": v}
        for k, v in overview.items()
        if not isinstance(v, list | dict)
    ]
    for section, key in TOP_SECTIONS.items():
        rows += [
            {
                "section": section,
                "key": entry.get(key),
                "cost_usd": entry.get("cost_usd"),
                "requests": entry.get("requests"),
                "value": entry.get("name"),
            }
            for entry in overview[section]
        ]
    return rows


@router.get(
    "/dashboard/overview",
    response_model=Envelope[Overview],
    responses={
        401: {"model": ErrorBody},
        422: {"model": ErrorBody},
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"},
    },
    summary="Month-to-date spend, change against last month, and the top consumers",
)
async def overview(
    request: Request, user: CurrentUser, pool: Pool, q: Annotated[OverviewQuery, Query()]
) -> Response:
    if (refused := await forbidden_unless(pool, user, "usage.read", q.org_id)) is not None:
        return refused
    text = await run_envelope(pool, user, "dashboard_overview", {"org": q.org_id}, whole=True,
                              meta={"currency": "USD"})
    if text is None:  # the function answered null: nothing to show, no CSV rows
        text = '{"data": null, "meta": {"currency": "USD"}}'
    if not wants_csv(request):
        return json_response(text)
    overview = parse_exact(text)["data"]
    return csv_response(CSV_COLUMNS, flatten(overview) if overview is not None else [], "overview.csv")


app = function_app(router, title="TokenTRA dashboard")
