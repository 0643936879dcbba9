"""GET /functions/v1/forecast: month-end spend and budget forecasts (intervals, exhaustion dates)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from tokentra_functions._analytics import json_response, run_envelope
from tokentra_functions._app import Pool, function_app
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, forbidden_unless

router = APIRouter(tags=["intelligence"])


class ForecastQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: UUID | None = None


@router.get(
    "/forecast",
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Month-end spend forecast with 80%/95% intervals, and each budget's period-end forecast",
)
async def forecast(user: CurrentUser, pool: Pool, q: Annotated[ForecastQuery, Query()]) -> Response:
    if (refused := await forbidden_unless(pool, user, "usage.read", q.org_id)) is not None:
        return refused
    # The report is one object (the organization's forecast and each budget's): all of it under data.
    return json_response(
        await run_envelope(pool, user, "forecast_report", {"org": q.org_id}, whole=True, meta={"currency": "USD"})
        or '{"data": null, "meta": {"currency": "USD"}}'  # the function answered null: nothing to forecast
    )


app = function_app(router, title="TokenTRA forecast")
