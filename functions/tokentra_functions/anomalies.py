"""GET /functions/v1/anomalies: the incidents the anomaly job found, newest first, under the user's RLS."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_functions._analytics import json_response, run_envelope
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions._inputs import Moment
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, forbidden_unless

router = APIRouter(tags=["intelligence"])


class AnomalyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID | None = None
    status: Literal["open", "closed", "acknowledged"] | None = None
    metric: Literal["cost", "requests", "tokens_per_request", "error_rate", "latency_ms"] | None = None
    dimension: Literal["organization", "team", "project", "feature", "model", "api_key_id"] | None = None
    severity: Literal["low", "medium", "high", "critical"] | None = None
    since: Moment | None = Field(default=None, description="Incidents that started at or after this time.")
    limit: int = Field(default=100, ge=1, le=1000)


@router.get(
    "/anomalies",
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Anomalies: type, severity, dimension and value, window, expected and actual, money, status",
)
async def anomalies(user: CurrentUser, pool: Pool, q: Annotated[AnomalyQuery, Query()]) -> Response:
    if (refused := await forbidden_unless(pool, user, "anomalies.read", q.org_id)) is not None:
        return refused
    return json_response(
        await run_envelope(
            pool,
            user,
            "anomaly_list",
            {
                "org": q.org_id,
                "status": q.status,
                "metric": q.metric,
                "dimension": q.dimension,
                "severity": q.severity,
                "since": q.since,
                "max_rows": q.limit,
            },
        )
        or '{"data": [], "meta": {}}'  # the function answered null: no anomalies
    )


@router.get(
    "/anomalies/{anomaly_id}/explanation",
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="The anomaly's explanation: prose, its source (llm or template), cost, and the evidence it cites",
)
async def anomaly_explanation(anomaly_id: UUID, user: CurrentUser, pool: Pool) -> Response:
    text = await run_envelope(pool, user, "explanation_of", {"anomaly": anomaly_id}, whole=True)
    if text is None:
        return error(404, "not_found", f"anomaly_id: no explanation of anomaly {anomaly_id} that you may read")
    return json_response(text)


app = function_app(router, title="TokenTRA anomalies")
