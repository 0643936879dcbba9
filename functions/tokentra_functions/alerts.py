"""Alert rules and events: /functions/v1/alerts and /functions/v1/alerts/events, for signed-in users.

Rules have seed 000's fields (name, type, condition, channels, enabled); a channel is an object such as
{"type": "webhook", "url": ..., "secret": "whsec_..."} or {"type": "slack", "url": ...}. Credentials are
encrypted on save and never returned (tokentra_core.alerting.channels). Events are listed with
their deliveries (failed ones included), and are acknowledged and resolved here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import psycopg
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ValidationError

from tokentra_core.alerting.channels import SAVE_SQL, ChannelError, prepare_channels, sealed_rows
from tokentra_core.db import AsyncConn, one_async
from tokentra_core.settings import get_settings
from tokentra_functions._app import Envelope, Pool, envelope, function_app, invalid_fields, json_body
from tokentra_functions._db_errors import db_error, invalid
from tokentra_functions.alert_models import CONDITIONS, Delivery, Event, Rule, RuleIn, RulePatch
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, UserClaims, as_user, forbidden_unless

router = APIRouter(tags=["alerts"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], raw: bytes | dict[str, Any], prefix: str = "") -> M | JSONResponse:
    try:
        return model.model_validate_json(raw) if isinstance(raw, bytes) else model.model_validate(raw)
    except ValidationError as exc:
        return invalid_fields(list(exc.errors()), prefix)


def _condition(rule_type: str, condition: dict[str, Any]) -> dict[str, Any] | JSONResponse:
    model = CONDITIONS[rule_type]
    if model is None:
        return condition
    checked = _validate(model, condition, "condition.")
    return (
        checked if isinstance(checked, JSONResponse) else checked.model_dump(mode="json", exclude_none=True)
    )


async def _channels(channels: list[Any], existing: list[dict[str, Any]]
                    ) -> tuple[list[dict[str, Any]], dict[UUID, dict[str, str]]] | JSONResponse:
    try:  # resolving hosts for the SSRF check blocks: off the event loop
        return await run_in_threadpool(prepare_channels, channels, existing, get_settings())
    except ChannelError as exc:
        return invalid(exc.field, str(exc))


def _answer(exc: psycopg.Error) -> JSONResponse:
    if (answer := db_error(exc)) is None:
        raise exc
    return answer


async def _missing_or_forbidden(conn: AsyncConn, table: str, row_id: UUID) -> JSONResponse:
    cur = await conn.execute(sql.SQL("select 1 from {} where id = %s").format(sql.Identifier("public", table)),
                             (row_id,))
    if await cur.fetchone():
        return JSONResponse({"error": "forbidden", "message": "your role may read this, not change it"}, 403)
    return JSONResponse({"error": "not_found", "message": "not found"}, 404)


# ---------------------------------------------------------------- events (before /alerts/{id})
@router.get(
    "/alerts/events", response_model=Envelope[list[Event]], responses=ERRORS, summary="Alert events, newest first"
)
async def list_events(
    request: Request,
    user: CurrentUser,
    pool: Pool,
    org_id: UUID | None = None,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    if (refused := await forbidden_unless(pool, user, "alerts.read", org_id)) is not None:
        return refused
    async with as_user(pool, user) as conn:
        cur = await conn.execute(
            "select * from public.alert_events where (%(org)s::uuid is null or org_id = %(org)s) "
            "and (%(status)s::text is null or status = %(status)s) order by created_at desc limit %(limit)s",
            {"org": org_id, "status": status, "limit": limit},
        )
        events = await cur.fetchall()
        deliveries = await _deliveries(conn, [e["id"] for e in events])
    return envelope(
        [Event(**e, deliveries=deliveries.get(e["id"], [])).model_dump(mode="json") for e in events],
        {"count": len(events), "limit": limit},
    )


async def _deliveries(conn: AsyncConn, event_ids: list[UUID]) -> dict[UUID, list[Delivery]]:
    cur = await conn.execute(
        "select id, event_id, channel_id, channel_type, kind, status, attempts, max_attempts, "
        "next_attempt_at, last_status_code, last_error, created_at, delivered_at "
        "from private.alert_deliveries where event_id = any(%s) order by created_at",
        (event_ids,),
    )
    out: dict[UUID, list[Delivery]] = {}
    for row in await cur.fetchall():
        out.setdefault(row.pop("event_id"), []).append(Delivery(**row))
    return out


@router.get("/alerts/events/{event_id}", response_model=Envelope[Event], responses=ERRORS, summary="One alert event")
async def get_event(event_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    async with as_user(pool, user) as conn:
        cur = await conn.execute("select * from public.alert_events where id = %s", (event_id,))
        row = await cur.fetchone()
        if row is None:
            return JSONResponse({"error": "not_found", "message": "no such alert event"}, 404)
        deliveries = await _deliveries(conn, [event_id])
    return envelope(Event(**row, deliveries=deliveries.get(event_id, [])).model_dump(mode="json"))


async def _set_status(event_id: UUID, status: str, request: Request, pool: Pool, user: UserClaims) -> JSONResponse:
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                "update public.alert_events set status = %s where id = %s returning *", (status, event_id)
            )
            row = await cur.fetchone()
            if row is None:
                return await _missing_or_forbidden(conn, "alert_events", event_id)
            deliveries = await _deliveries(conn, [event_id])
    except psycopg.Error as exc:
        return _answer(exc)
    return envelope(Event(**row, deliveries=deliveries.get(event_id, [])).model_dump(mode="json"))


@router.post(
    "/alerts/events/{event_id}/acknowledge",
    response_model=Envelope[Event],
    responses=ERRORS,
    summary="Acknowledge an alert event",
)
async def acknowledge_event(event_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    return await _set_status(event_id, "acknowledged", request, pool, user)


@router.post(
    "/alerts/events/{event_id}/resolve",
    response_model=Envelope[Event],
    responses=ERRORS,
    summary="Resolve an alert event (PagerDuty incidents are resolved too)",
)
async def resolve_event(event_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    return await _set_status(event_id, "resolved", request, pool, user)


@router.post(
    "/alerts/deliveries/{delivery_id}/retry", response_model=Envelope[dict[str, bool]], responses=ERRORS,
    summary="Send a failed delivery again",
)
async def retry_delivery(delivery_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute("select public.retry_alert_delivery(%s) as queued", (delivery_id,))
            queued = (await one_async(cur))["queued"]
    except psycopg.Error as exc:
        return _answer(exc)
    return envelope({"queued": queued})


# ---------------------------------------------------------------- rules
@router.get("/alerts", response_model=Envelope[list[Rule]], responses=ERRORS, summary="Alert rules")
async def list_rules(request: Request, user: CurrentUser, pool: Pool, org_id: UUID | None = None) -> JSONResponse:
    if (refused := await forbidden_unless(pool, user, "alerts.read", org_id)) is not None:
        return refused
    async with as_user(pool, user) as conn:
        cur = await conn.execute(
            "select * from public.alert_rules where %s::uuid is null or org_id = %s order by org_id, name",
            (org_id, org_id),
        )
        rows = await cur.fetchall()
    return envelope([Rule(**r).model_dump(mode="json") for r in rows], {"count": len(rows)})


@router.post(
    "/alerts", status_code=201, response_model=Envelope[Rule], responses=ERRORS, summary="Create an alert rule",
    openapi_extra=json_body(RuleIn),
)
async def create_rule(request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    body = _validate(RuleIn, await request.body())
    if isinstance(body, JSONResponse):
        return body
    condition = _condition(body.type, body.condition)
    if isinstance(condition, JSONResponse):
        return condition
    prepared = await _channels(body.channels, [])
    if isinstance(prepared, JSONResponse):
        return prepared
    channels, credentials = prepared
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(
                "insert into public.alert_rules (org_id, name, type, condition, channels, enabled) "
                "values (%s, %s, %s, %s, %s, %s) returning *",
                (body.org_id, body.name, body.type, Jsonb(condition), Jsonb(channels), body.enabled),
            )
            row = await one_async(cur)  # insert ... returning: the row, or an exception
            for params in sealed_rows(body.org_id, row["id"], credentials):
                await conn.execute(SAVE_SQL, params)
    except psycopg.Error as exc:
        return _answer(exc)
    return envelope(Rule(**row).model_dump(mode="json"), status=201)


@router.get("/alerts/{rule_id}", response_model=Envelope[Rule], responses=ERRORS, summary="One alert rule")
async def get_rule(rule_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    async with as_user(pool, user) as conn:
        cur = await conn.execute("select * from public.alert_rules where id = %s", (rule_id,))
        row = await cur.fetchone()
    if row is None:
        return JSONResponse({"error": "not_found", "message": "no such alert rule"}, 404)
    return envelope(Rule(**row).model_dump(mode="json"))


@router.patch("/alerts/{rule_id}", response_model=Envelope[Rule], responses=ERRORS, summary="Change an alert rule",
              openapi_extra=json_body(RulePatch))
async def update_rule(rule_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> JSONResponse:
    body = _validate(RulePatch, await request.body())
    if isinstance(body, JSONResponse):
        return body
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute("select * from public.alert_rules where id = %s", (rule_id,))
            rule = await cur.fetchone()
            if rule is None:
                return JSONResponse({"error": "not_found", "message": "no such alert rule"}, 404)
            condition = (
                rule["condition"] if body.condition is None else _condition(rule["type"], body.condition)
            )
            if isinstance(condition, JSONResponse):
                return condition
            channels = rule["channels"]
            credentials: dict[UUID, dict[str, str]] = {}
            if body.channels is not None:
                prepared = await _channels(body.channels, rule["channels"])
                if isinstance(prepared, JSONResponse):
                    return prepared
                channels, credentials = prepared
            cur = await conn.execute(
                "update public.alert_rules set name = %s, condition = %s, channels = %s, enabled = %s "
                "where id = %s returning *",
                (
                    body.name or rule["name"],
                    Jsonb(condition),
                    Jsonb(channels),
                    rule["enabled"] if body.enabled is None else body.enabled,
                    rule_id,
                ),
            )
            row = await cur.fetchone()
            if row is None:
                return await _missing_or_forbidden(conn, "alert_rules", rule_id)
            for params in sealed_rows(rule["org_id"], rule_id, credentials):
                await conn.execute(SAVE_SQL, params)
    except psycopg.Error as exc:
        return _answer(exc)
    return envelope(Rule(**row).model_dump(mode="json"))


@router.delete("/alerts/{rule_id}", status_code=204, responses=ERRORS, summary="Delete an alert rule")
async def delete_rule(rule_id: UUID, request: Request, pool: Pool, user: CurrentUser) -> Response:
    async with as_user(pool, user) as conn:
        cur = await conn.execute("delete from public.alert_rules where id = %s returning id", (rule_id,))
        if await cur.fetchone() is None:  # pipeline mode (as_user): fetch rather than rowcount
            return await _missing_or_forbidden(conn, "alert_rules", rule_id)
    return Response(status_code=204)


app = function_app(router, title="TokenTRA alerts")
