"""Budgets: /functions/v1/budgets, for signed-in users (admins write, members read; RLS decides).

Fields as in seed 000 (name, amount, period, scope_type, scope_id, alert_thresholds, hard_limit; status
and current_spend on read), plus the period's bounds, what strict reservations hold and the projected
spend at period end, all from public.budget_status (spend read from the rollups).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokentra_core.db import AsyncConn, one_async
from tokentra_functions._app import Envelope, Pool, envelope, function_app, invalid_fields, json_body
from tokentra_functions._db_errors import db_error
from tokentra_functions._inputs import Text
from tokentra_functions.models import ErrorBody, Money
from tokentra_functions.user_auth import CurrentUser, as_user, forbidden_unless

router = APIRouter(tags=["budgets"])

Period = Literal["daily", "weekly", "monthly"]
ScopeType = Literal["organization", "team", "project", "model", "feature", "user", "api_key"]
Amount = Annotated[Decimal, Field(gt=0, le=Decimal("999999999999.99"), decimal_places=2)]
Threshold = Annotated[int, Field(ge=1, le=1000)]
Name = Annotated[Text, Field(min_length=1, max_length=200)]


class BudgetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    amount: Amount | None = None
    period: Period | None = None
    week_start: Annotated[int, Field(ge=0, le=6, description="0 = Sunday .. 6 = Saturday")] | None = None
    scope_type: ScopeType | None = None
    scope_id: Annotated[Text, Field(
        max_length=200,
        description="The scope's team or project name as usage tags carry it (or its id), model, feature, "
                    "end user id or API key id; absent for organization.")] | None = None
    alert_thresholds: Annotated[list[Threshold], Field(max_length=20)] | None = None
    hard_limit: bool | None = None
    enabled: bool | None = None


class BudgetIn(BudgetPatch):
    org_id: UUID
    name: Name
    amount: Amount
    period: Period
    week_start: Annotated[int, Field(ge=0, le=6)] = 1
    scope_type: ScopeType = "organization"
    alert_thresholds: Annotated[list[Threshold], Field(max_length=20)] = [50, 75, 90, 100]
    hard_limit: bool = False
    enabled: bool = True


class Budget(BaseModel):
    """Money is a JSON number in USD."""

    id: UUID
    org_id: UUID
    name: str
    amount: Money
    currency: str
    period: Period
    week_start: int
    scope_type: ScopeType
    scope_id: str | None
    alert_thresholds: list[int]
    hard_limit: bool
    enabled: bool
    status: Literal["ok", "warning", "exceeded"]
    current_spend: Money
    reserved: Money = Field(description="Held by open strict-mode reservations.")
    remaining: Money
    projected_spend: Money = Field(description="Spend expected at period end at the current run rate.")
    crossed_thresholds: list[int]
    period_start: datetime
    period_end: datetime
    created_at: datetime
    updated_at: datetime


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
NOT_FOUND = {"error": "not_found", "message": "no such budget"}
# Columns a client may write, in the order of BudgetPatch (identifiers come from here, never from input).
WRITABLE = tuple(BudgetPatch.model_fields)


def _body(model: type[BaseModel], raw: bytes) -> BaseModel | JSONResponse:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        return invalid_fields(list(exc.errors()))


async def _read(conn: AsyncConn, budget_id: UUID) -> dict[str, Any] | None:
    cur = await conn.execute("select * from public.budget_status where id = %s", (budget_id,))
    return await cur.fetchone()


def _one(row: dict[str, Any], status: int = 200) -> JSONResponse:
    return envelope(Budget(**row).model_dump(mode="json"), {"currency": "USD"}, status)


@router.get(
    "/budgets", response_model=Envelope[list[Budget]], responses=ERRORS, summary="Budgets with live status"
)
async def list_budgets(request: Request, user: CurrentUser, pool: Pool, org_id: UUID | None = None) -> JSONResponse:
    if (refused := await forbidden_unless(pool, user, "budgets.read", org_id)) is not None:
        return refused
    async with as_user(pool, user) as conn:
        cur = await conn.execute(
            "select * from public.budget_status where %s::uuid is null or org_id = %s order by org_id, name",
            (org_id, org_id),
        )
        rows = await cur.fetchall()
    return envelope([Budget(**r).model_dump(mode="json") for r in rows], {"currency": "USD", "count": len(rows)})


@router.post(
    "/budgets", status_code=201, response_model=Envelope[Budget], responses=ERRORS, summary="Create a budget",
    openapi_extra=json_body(BudgetIn),
)
async def create_budget(request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    body = _body(BudgetIn, await request.body())
    if isinstance(body, JSONResponse):
        return body
    values = body.model_dump(exclude_none=True)
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                sql.SQL("insert into public.budgets ({}) values ({}) returning id").format(
                    sql.SQL(", ").join(map(sql.Identifier, values)),
                    sql.SQL(", ").join(sql.Placeholder() * len(values)),
                ),
                list(values.values()),
            )
            row = await _read(conn, (await one_async(cur))["id"])  # insert ... returning: a row or an exception
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    if row is None:  # created, yet not readable by its creator
        return JSONResponse(NOT_FOUND, status_code=404)
    return _one(row, 201)


@router.get(
    "/budgets/{budget_id}", response_model=Envelope[Budget], responses=ERRORS, summary="One budget with live status"
)
async def get_budget(budget_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    async with as_user(pool, user) as conn:
        row = await _read(conn, budget_id)
    if row is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return _one(row)


@router.patch(
    "/budgets/{budget_id}", response_model=Envelope[Budget], responses=ERRORS, summary="Change a budget",
    openapi_extra=json_body(BudgetPatch),
)
async def update_budget(budget_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    body = _body(BudgetPatch, await request.body())
    if isinstance(body, JSONResponse):
        return body
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k in WRITABLE}
    try:
        async with as_user(pool, user) as conn:
            if values:
                cur = await conn.execute(
                    sql.SQL("update public.budgets set {} where id = %s returning id").format(
                        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values)
                    ),
                    [*values.values(), budget_id],
                )
                # A fetch, not rowcount: as_user runs in pipeline mode, where rowcount waits for a sync.
                if await cur.fetchone() is None:
                    return await _missing_or_forbidden(conn, budget_id)
            row = await _read(conn, budget_id)
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    if row is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return _one(row)


@router.delete("/budgets/{budget_id}", status_code=204, responses=ERRORS, summary="Delete a budget")
async def delete_budget(budget_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> Response:
    async with as_user(pool, user) as conn:
        cur = await conn.execute("delete from public.budgets where id = %s returning id", (budget_id,))
        if await cur.fetchone() is None:
            return await _missing_or_forbidden(conn, budget_id)
    return Response(status_code=204)


async def _missing_or_forbidden(conn: AsyncConn, budget_id: UUID) -> JSONResponse:
    """RLS hides rows one may not write: 403 if the user can at least read it, else 404."""
    cur = await conn.execute("select 1 from public.budgets where id = %s", (budget_id,))
    if await cur.fetchone():
        return JSONResponse(
            {"error": "forbidden", "message": "your role may read this budget, not change it"},
            status_code=403,
        )
    return JSONResponse(NOT_FOUND, status_code=404)


app = function_app(router, title="TokenTRA budgets")
