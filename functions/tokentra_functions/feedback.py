"""POST /functions/v1/feedback: quality scores in [0, 1] for calls reported to /ingest.

The customer judges an answer after the call (a user's rating, an evaluation) and sends its score with
the call's request_id; the quality-cost Pareto detector compares models on these scores.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tokentra_functions._app import Pool, function_app, json_body
from tokentra_functions._inputs import no_nul
from tokentra_functions.ingest import read_batch
from tokentra_functions.models import ErrorBody, Rejection, Short

__all__ = ["FeedbackItem", "FeedbackResult", "app", "router"]

router = APIRouter(tags=["feedback"])
log = logging.getLogger("tokentra.feedback")


class FeedbackItem(BaseModel):
    """One score for one reported call; a later score for the same request_id replaces it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    request_id: Annotated[Short, AfterValidator(no_nul)]
    score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="0 = useless, 1 = perfect")]


class FeedbackBatch(BaseModel):
    """The request body (documentation: the handler reads it itself, item by item, after the key)."""

    feedback: Annotated[list[FeedbackItem], Field(max_length=1000)]


class FeedbackResult(BaseModel):
    accepted: int
    unmatched: int = Field(description="Stored scores whose request_id has no usage event (yet).")
    rejected: list[Rejection]


def validate(raw: list) -> tuple[list[dict], list[Rejection]]:
    rows, rejected = [], []
    for idx, item in enumerate(raw):
        try:
            fb = FeedbackItem.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "feedback"
            rejected.append(Rejection(index=idx, field=field, message=first["msg"]))
            continue
        rows.append({"idx": idx, "request_id": fb.request_id, "score": fb.score})
    return rows, rejected


@router.post(
    "/feedback",
    response_model=FeedbackResult,
    openapi_extra=json_body(FeedbackBatch),
    responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
               422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="Store quality scores for up to 1,000 reported calls",
)
async def feedback(request: Request, pool: Pool) -> JSONResponse:
    batch = await read_batch(request, pool, "feedback")
    if isinstance(batch, JSONResponse):
        return batch
    key, items = batch
    rows, rejected = validate(items)
    accepted = unmatched = 0
    if rows:
        async with pool.connection() as conn:
            cur = await conn.execute("select * from private.record_feedback(%s, %s)", (key.org_id, Jsonb(rows)))
            for r in await cur.fetchall():
                accepted += 1
                unmatched += r["outcome"] == "unmatched"
    rejected.sort(key=lambda r: r.index)
    log.info("feedback org=%s accepted=%d unmatched=%d rejected=%d", key.org_id, accepted, unmatched,
             len(rejected))
    result = FeedbackResult(accepted=accepted, unmatched=unmatched, rejected=rejected)
    return JSONResponse(result.model_dump(mode="json"))


app = function_app(router, title="TokenTRA feedback")
