"""POST /functions/v1/assistant/query: a question about the organization's AI spend, answered from our
query functions through the assistant's tools, as the signed-in user."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokentra_core.db import one_async
from tokentra_core.llm_status import llm_status
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, error, invalid_fields, json_body
from tokentra_functions._inputs import Text
from tokentra_functions.assistant.result import dump, template_answered
from tokentra_functions.assistant.tools import ToolContext
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user, forbidden_unless

__all__ = ["AssistantQuery", "AssistantResponse", "router"]

router = APIRouter(tags=["intelligence"])


class AssistantQuery(BaseModel):
    """A question in plain words."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    query: Annotated[Text, Field(min_length=1, max_length=2000, examples=["Why did our costs increase last week?"])]
    org_id: UUID | None = Field(default=None, description="The organization asked about (default: your only one).")


class Source(BaseModel):
    id: str
    tool: str = Field(description="The assistant's tool that ran the query.")
    arguments: dict[str, Any] = Field(description="The tool's arguments as the model gave them.")
    query: str = Field(description="The SQL function or view read, e.g. public.cost_breakdown.")
    parameters: dict[str, Any] = Field(description="The parameters it ran with (the organization included).")
    rows: int


class AssistantUsage(BaseModel):
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class AssistantResponse(BaseModel):
    answer: str
    sources: list[Source]
    suggested_actions: list[str]
    source: Literal["llm", "template"]
    fallback_reason: Literal["llm_off", "ai_cap_reached", "llm_failed", "ungrounded"] | None
    usage: AssistantUsage = Field(description="The provider calls this answer made, recorded as AI spend.")


def _invalid(exc: ValidationError) -> JSONResponse:
    """The functions' 422 body for the request's fields. Not invalid_fields(): it drops the location names
    FastAPI puts first (body, query, path), and this body's own field is called `query`."""
    listed = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"].removeprefix("Value error, ")}
              for e in exc.errors()]
    message = "; ".join(f"{e['field']}: {e['reason']}" for e in listed)
    return JSONResponse({"error": "invalid_request", "message": message, "field": listed[0]["field"],
                         "reason": listed[0]["reason"], "errors": listed}, status_code=422)


async def _only_org(pool: Pool, user: CurrentUser) -> UUID | JSONResponse:
    async with as_user(pool, user) as conn:
        ids = (await one_async(await conn.execute("select private.org_ids_with('usage.read') as ids")))["ids"]
    if not ids:
        return error(403, "forbidden", "your role in any of your organizations does not include usage.read; "
                                       "ask an owner for a role that does")
    if len(ids) > 1:
        return invalid_fields([{"loc": ("org_id",), "msg": "required: you can read the usage of several "
                                                          "organizations; name the one you ask about"}])
    return UUID(str(ids[0]))


@router.post(
    "/assistant/query",
    response_model=AssistantResponse,
    openapi_extra=json_body(AssistantQuery),
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Ask the cost assistant: an answer grounded in your own usage, its sources and suggested actions",
)
async def assistant_query(request: Request, user: CurrentUser, pool: Pool) -> Response:
    try:
        body = AssistantQuery.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        return _invalid(exc)
    org = body.org_id or await _only_org(pool, user)
    if isinstance(org, JSONResponse):
        return org
    if (refused := await forbidden_unless(pool, user, "usage.read", org)) is not None:
        return refused
    settings = get_settings()
    ctx = ToolContext(pool=pool, user=user, org_id=org, today=datetime.now(UTC).date(),
                      max_rows=settings.assistant_max_rows, timeout_ms=settings.assistant_statement_timeout_ms)
    if not llm_status(settings)["enabled"]:
        answered = await template_answered(ctx, "llm_off")
    else:
        # The LLM layer and its client libraries load on the first question, not at a function's cold start.
        from tokentra_functions.assistant.answer import answer_question

        answered = await answer_question(ctx, settings, body.query)
    return Response(dump(answered), media_type="application/json")
