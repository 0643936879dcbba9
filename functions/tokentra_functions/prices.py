"""Prices: what a model name resolves to, and an organization's own prices (a fine-tune, a private
deployment, a negotiated rate) for signed-in users. Setting one re-prices the stored calls it covers;
RLS and public.set_model_price decide who may (prices.write: owners, admins, billing)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.db import one_async
from tokentra_functions._app import Pool, envelope, function_app
from tokentra_functions._db_errors import db_error
from tokentra_functions._inputs import Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user

router = APIRouter(tags=["prices"])

Name = Annotated[Text, Field(min_length=1, max_length=200)]
# USD per million tokens (per thousand requests); the SQL function refuses implausible ones too.
Mtok = Annotated[Decimal, Field(ge=0, le=100_000, max_digits=18, decimal_places=9)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody},
}


class ResolveQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model: Name = Field(description="The model name as a client sends it (gpt-4o-2024-08-06, my-azure-deployment).")
    provider: Annotated[Text, Field(max_length=64)] | None = Field(
        default=None, description="The provider as a client names it (openai, azure, ...)."
    )
    org_id: UUID | None = Field(default=None, description="Include this organization's own prices.")
    at: datetime | None = Field(default=None, description="The instant whose price to show (default: now).")


class PriceIn(BaseModel):
    """One complete price set: units left out are billed at the input (cache) or output (reasoning) price."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID
    model: Name = Field(description="The model name as your calls send it, or a canonical model (gpt-4o) to "
                                    "override every name that resolves to it.")
    provider: Annotated[Text, Field(max_length=64)] | None = Field(
        default=None, description="Only calls to this provider (default: any provider)."
    )
    input_mtok: Mtok
    output_mtok: Mtok
    cache_read_mtok: Mtok | None = None
    cache_write_mtok: Mtok | None = None
    output_reasoning_mtok: Mtok | None = None
    requests_kcount: Mtok | None = Field(default=None, description="USD per thousand requests.")
    effective_from: datetime | None = Field(
        default=None, description="From when the price applies (default: all history, so past calls are re-priced)."
    )
    note: Annotated[Text, Field(max_length=500)] | None = None


class PriceSet(BaseModel):
    price_id: int
    org_id: UUID
    provider_id: str
    model_id: str
    provider: str | None
    effective_from: datetime | None
    input_mtok: float
    output_mtok: float
    cache_read_mtok: float | None
    cache_write_mtok: float | None
    output_reasoning_mtok: float | None
    requests_kcount: float | None
    note: str | None
    repriced: int = Field(description="Stored calls re-priced by this price.")


class PriceSetAnswer(BaseModel):
    data: PriceSet
    meta: dict[str, Any] = Field(default_factory=dict)


class OrgPricesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: UUID | None = None


@router.get("/prices/resolve", responses=ERRORS,
            summary="What a model name resolves to: canonical model, price source (organization, genai-prices or "
                    "none) and the price in effect")
async def resolve(user: CurrentUser, pool: Pool, q: Annotated[ResolveQuery, Query()]) -> JSONResponse:
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                "select public.resolve_model_price(model => %s, provider => %s, org => %s, "
                "at => coalesce(%s, now()))::text as result",
                (q.model, q.provider, q.org_id, q.at),
            )
            row = await one_async(cur)
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return envelope(json.loads(row["result"]))


@router.get("/prices", responses=ERRORS, summary="Your organizations' own prices, with their history")
async def list_prices(user: CurrentUser, pool: Pool, q: Annotated[OrgPricesQuery, Query()]) -> JSONResponse:
    async with as_user(pool, user) as conn:
        cur = await conn.execute(
            "select coalesce(jsonb_agg(to_jsonb(p) - 'prices' order by p.org_id, p.model_id, p.effective_from), "
            "'[]')::text as result from public.model_prices p "
            "where p.org_id is not null and (%s::uuid is null or p.org_id = %s::uuid)",
            (q.org_id, q.org_id),
        )
        row = await one_async(cur)
    return envelope(json.loads(row["result"]), {"currency": "USD", "unit": "per million tokens"})


@router.post("/prices", status_code=201, response_model=PriceSetAnswer, responses=ERRORS,
             summary="Set an organization's own price for a model and re-price the calls it covers")
async def set_price(body: PriceIn, user: CurrentUser, pool: Pool) -> JSONResponse:
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                "select public.set_model_price(org => %s, model => %s, input_mtok => %s, output_mtok => %s, "
                "provider => %s, effective_from => %s, cache_read_mtok => %s, cache_write_mtok => %s, "
                "output_reasoning_mtok => %s, requests_kcount => %s, note => %s)::text as result",
                (body.org_id, body.model, body.input_mtok, body.output_mtok, body.provider, body.effective_from,
                 body.cache_read_mtok, body.cache_write_mtok, body.output_reasoning_mtok, body.requests_kcount,
                 body.note),
            )
            row = await one_async(cur)
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return envelope(json.loads(row["result"]), {"currency": "USD", "unit": "per million tokens"}, status=201)


app = function_app(router, title="TokenTRA prices")
