"""GET /functions/v1/optimization/recommendations/{id}/consensus: the multi-agent reviews of a
recommendation, newest first, with every round's score, each agent's position, and each provider call's
tokens and cost.

Runs `public.recommendation_consensus` as the signed-in user: RLS decides, so a recommendation of another
organization, or one never reviewed, answers 404 alike."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from tokentra_functions._app import Pool, function_app
from tokentra_functions.models import ErrorBody
from tokentra_functions.recommendations import _call
from tokentra_functions.user_auth import CurrentUser

router = APIRouter(prefix="/optimization", tags=["intelligence"])


@router.get(
    "/recommendations/{rec_id}/consensus",
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="The consensus reviews of a recommendation: rounds, positions, scores, tokens and cost",
)
async def consensus(rec_id: UUID, user: CurrentUser, pool: Pool) -> Response:
    return await _call(pool, user, "select public.recommendation_consensus(%s) as result", (rec_id,))


app = function_app(router, title="TokenTRA consensus")
