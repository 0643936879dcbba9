"""Virtual keys over HTTP for signed-in admins: /functions/v1/virtual-keys (Supabase user JWT).

Each handler calls one SQL function under the user's role; the database decides who may (api_keys.write
to create, rotate and revoke; budgets.write too for a key with its own budget; api_keys.read to list).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, TypeVar
from uuid import UUID

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tokentra_core.db import one_async
from tokentra_functions._app import Pool
from tokentra_functions._db_errors import db_error, invalid
from tokentra_functions._inputs import Moment, Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user

router = APIRouter(tags=["virtual keys"])
M = TypeVar("M", bound=BaseModel)
Tag = Annotated[Text, Field(min_length=1, max_length=200)]
ERRORS: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                              404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
NOT_FOUND = {"error": "not_found", "message": "no active virtual key with that id in this organization"}


# The column is a Postgres integer: a larger limit was a 500 from the insert.
MAX_TPM = 2_147_483_647


class VirtualKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID
    name: Tag = "gateway"
    team: Tag | None = None
    project: Tag | None = None
    end_user: Tag | None = None
    budget: Annotated[Decimal, Field(gt=0, le=Decimal("999999999999.99"), decimal_places=2)] | None = Field(
        default=None, description="USD per period; the key gets a budget of its own.")
    period: Literal["daily", "weekly", "monthly"] = "monthly"
    hard_limit: bool = Field(default=True, description="Refuse calls that could pass the budget (strict).")
    rpm: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    tpm: Annotated[int, Field(ge=1, le=MAX_TPM)] | None = None
    models: Annotated[list[Tag], Field(min_length=1, max_length=200)] | None = None
    providers: Annotated[list[Literal["openai", "anthropic"]], Field(min_length=1)] | None = None
    expires_at: Moment | None = None


class CreatedKey(BaseModel):
    id: UUID
    key: str = Field(description="Shown once; only its hash is kept.")
    prefix: str
    budget_id: UUID | None = None


class VirtualKey(BaseModel):
    id: UUID
    name: str
    prefix: str
    team: str | None
    project: str | None
    end_user_id: str | None
    budget_id: UUID | None
    budget_amount: Decimal | None
    budget_period: str | None
    hard_limit: bool | None
    rpm: int | None
    tpm: int | None
    allowed_models: list[str] | None
    allowed_providers: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    blocked_until: datetime | None
    block_reason: str | None


class VirtualKeyList(BaseModel):
    data: list[VirtualKey]


class OrgRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: UUID


def _parse(model: type[M], raw: bytes) -> M | JSONResponse:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        return invalid(".".join(str(p) for p in first["loc"]) or "body", first["msg"])


@router.post("/virtual-keys", status_code=201, response_model=CreatedKey, responses=ERRORS,
             summary="Create a virtual key for the gateway (the key is returned once)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": VirtualKeyIn.model_json_schema(ref_template="#/components/schemas/{model}")}}}})
async def create(request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    body = _parse(VirtualKeyIn, await request.body())
    if isinstance(body, JSONResponse):
        return body
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                "select * from public.create_virtual_key(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (body.org_id, body.name, body.team, body.project, body.end_user, body.budget, body.period,
                 body.hard_limit, body.rpm, body.tpm, body.models, body.providers, body.expires_at))
            row = await one_async(cur)  # the new key, or an exception
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return JSONResponse(CreatedKey(**row).model_dump(mode="json"), status_code=201)


@router.get("/virtual-keys", response_model=VirtualKeyList, responses=ERRORS,
            summary="An organization's virtual keys with their policy, budget and any block")
async def list_keys(request: Request, pool: Pool, user: CurrentUser, org_id: UUID) -> JSONResponse:
    async with as_user(pool, user) as conn:
        cur = await conn.execute("select * from public.list_virtual_keys(%s)", (org_id,))
        rows = await cur.fetchall()
    return JSONResponse(VirtualKeyList(data=[VirtualKey(**r) for r in rows]).model_dump(mode="json"))


@router.post("/virtual-keys/{key_id}/rotate", response_model=CreatedKey, responses=ERRORS,
             summary="A new secret for the same key (the old one stops working)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": OrgRef.model_json_schema()}}}})
async def rotate(key_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    body = _parse(OrgRef, await request.body())
    if isinstance(body, JSONResponse):
        return body
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute("select * from public.rotate_virtual_key(%s, %s)", (body.org_id, key_id))
            row = await one_async(cur)  # the new secret, or an exception (P0002 for an unknown key)
    except psycopg.Error as exc:
        if exc.sqlstate == "P0002":
            return JSONResponse(NOT_FOUND, status_code=404)
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return JSONResponse(CreatedKey(**row).model_dump(mode="json"))


@router.post("/virtual-keys/{key_id}/revoke", status_code=204, responses=ERRORS,
             summary="Revoke a virtual key (calls with it are refused at once)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": OrgRef.model_json_schema()}}}})
async def revoke(key_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> Response:
    body = _parse(OrgRef, await request.body())
    if isinstance(body, JSONResponse):
        return body
    async with as_user(pool, user) as conn:
        cur = await conn.execute("select public.revoke_virtual_key(%s, %s) as revoked", (body.org_id, key_id))
        revoked = (await one_async(cur))["revoked"]
    if not revoked:
        return JSONResponse(NOT_FOUND, status_code=404)
    return Response(status_code=204)
