"""GET /functions/v1/llm/status: whether LLM features are on, and an organization's AI spend against its cap."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from tokentra_core.llm_status import llm_status
from tokentra_core.settings import get_settings
from tokentra_functions._app import Envelope, Pool, envelope, error, function_app
from tokentra_functions.models import ErrorBody, Money
from tokentra_functions.user_auth import CurrentUser, as_user

router = APIRouter(tags=["llm"])


class StatusQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: UUID | None = None


class AISpend(BaseModel):
    org_id: UUID
    month_start: str
    spend_usd: Money  # what TokenTRA's own LLM calls for the organization cost this UTC month
    calls: int
    cap_usd: Money  # billing_profiles.ai_monthly_cap_usd


class LLMStatus(BaseModel):
    enabled: bool
    providers: list[str]
    reason: str
    ai_spend: AISpend | None = None


@router.get(
    "/llm/status",
    response_model=Envelope[LLMStatus],
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="LLM features on or off (and how to turn them on); with org_id, its AI spend this month and cap",
)
async def status(user: CurrentUser, pool: Pool, q: Annotated[StatusQuery, Query()]):
    result = LLMStatus(**llm_status(get_settings()))
    if q.org_id is None:
        return envelope(result.model_dump(mode="json"))
    async with as_user(pool, user) as conn:
        cur = await conn.execute("select * from public.ai_spend(%s)", (q.org_id,))
        row = await cur.fetchone()
    if row is None:  # not a member with usage.read: the same answer as for an unknown organization
        return error(404, "not_found", "org_id: no organization you may read usage of has this id")
    result.ai_spend = AISpend(org_id=row["org_id"], month_start=row["month_start"].isoformat(),
                              spend_usd=row["spend_usd"], calls=row["calls"], cap_usd=row["cap_usd"])
    return envelope(result.model_dump(mode="json"), {"currency": "USD"})


app = function_app(router, title="TokenTRA LLM status")
