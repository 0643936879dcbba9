"""The admin page's endpoints: members and roles, API keys, analyst logins (/functions/v1/admin/...).

Each runs one SQL function or one statement as the signed-in user, so the role matrix in the database
decides: members.read lists members and analysts, members.write (owners) changes roles, removes members
and manages analysts, api_keys.read/write list, create and revoke keys. Refusals are 403, unknown rows 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.db import analyst_connection_string
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions._db_errors import db_error
from tokentra_functions._inputs import Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, UserClaims, as_user

router = APIRouter(prefix="/admin", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
Role = Literal["owner", "admin", "member", "viewer", "billing"]
OrgId = Annotated[UUID, Query(description="The organization.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------- wire models
class Member(BaseModel):
    user_id: UUID
    email: str | None
    role: Role
    created_at: datetime


class RoleChange(_Body):
    org_id: UUID
    role: Role


class ApiKey(BaseModel):
    id: UUID
    org_id: UUID
    project_id: UUID | None
    name: str | None
    prefix: str
    mode: str
    scopes: list[str]
    rate_limit_per_minute: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class NewApiKey(_Body):
    org_id: UUID
    name: Annotated[Text, Field(min_length=1, max_length=200)] = "default"
    mode: Literal["live", "test"] = "live"
    project_id: UUID | None = None
    expires_at: datetime | None = None


class CreatedApiKey(BaseModel):
    id: UUID
    name: str
    prefix: str
    key: str = Field(description="The key itself, shown this once: only its hash is stored.")


class Analyst(BaseModel):
    role: str
    statement_timeout: str
    created_at: datetime


class NewAnalyst(_Body):
    org_id: UUID
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 60


class CreatedAnalyst(BaseModel):
    role: str
    connection_string: str = Field(description="With the password, shown this once.")


def _data(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": value}, status_code=status)


async def _rows(user: UserClaims, pool: Pool, sql: str, args: tuple) -> list[dict[str, Any]] | JSONResponse:
    try:
        async with as_user(pool, user) as conn:
            cur = conn.cursor(row_factory=dict_row)
            return await (await cur.execute(sql, args)).fetchall()
    except psycopg.Error as exc:
        if (answer := db_error(exc)) is None:
            raise
        return answer


# ---------------------------------------------------------------- members
@router.get("/members", responses=ERRORS, summary="Members of an organization with email and role",
            response_model=dict[str, list[Member]])
async def members(user: CurrentUser, pool: Pool, org_id: OrgId) -> JSONResponse:
    rows = await _rows(user, pool, "select * from public.org_members(%s)", (org_id,))
    if isinstance(rows, JSONResponse):
        return rows
    return _data([Member(**r).model_dump(mode="json") for r in rows])


@router.patch("/members/{user_id}", responses=ERRORS, summary="Change a member's role (owners)",
              response_model=dict[str, Member])
async def change_role(user_id: UUID, body: RoleChange, user: CurrentUser, pool: Pool) -> JSONResponse:
    rows = await _rows(user, pool, "select public.set_member_role(%s, %s, %s) as changed",
                       (body.org_id, user_id, body.role))
    if isinstance(rows, JSONResponse):
        return rows
    if not rows[0]["changed"]:
        return error(403, "forbidden", "user_id: not a member you may change (only owners change roles)")
    listed = await _rows(user, pool, "select * from public.org_members(%s) where user_id = %s",
                         (body.org_id, user_id))
    if isinstance(listed, JSONResponse):
        return listed
    return _data(Member(**listed[0]).model_dump(mode="json"))


@router.delete("/members/{user_id}", status_code=204, responses=ERRORS,
               summary="Remove a member from an organization (owners)")
async def remove_member(user_id: UUID, user: CurrentUser, pool: Pool, org_id: OrgId) -> Response:
    rows = await _rows(user, pool, "select public.remove_member(%s, %s) as removed", (org_id, user_id))
    if isinstance(rows, JSONResponse):
        return rows
    if not rows[0]["removed"]:
        return error(403, "forbidden", "user_id: not a member you may remove (only owners remove members)")
    return Response(status_code=204)


# ---------------------------------------------------------------- API keys
_KEY_COLUMNS = ", ".join(ApiKey.model_fields)


@router.get("/api-keys", responses=ERRORS, summary="API keys of an organization (never the key itself)",
            response_model=dict[str, list[ApiKey]])
async def api_keys(user: CurrentUser, pool: Pool, org_id: OrgId) -> JSONResponse:
    rows = await _rows(user, pool, f"select {_KEY_COLUMNS} from public.api_keys where org_id = %s "  # noqa: S608
                       "order by revoked_at nulls first, created_at desc", (org_id,))
    if isinstance(rows, JSONResponse):
        return rows
    return _data([ApiKey(**r).model_dump(mode="json") for r in rows])


@router.post("/api-keys", status_code=201, responses=ERRORS, summary="Create an API key (shown once)",
             response_model=dict[str, CreatedApiKey])
async def create_api_key(body: NewApiKey, user: CurrentUser, pool: Pool) -> JSONResponse:
    rows = await _rows(user, pool, "select * from public.create_api_key(%s, %s, %s, %s, array['ingest'], %s)",
                       (body.org_id, body.project_id, body.name, body.mode == "test", body.expires_at))
    if isinstance(rows, JSONResponse):
        return rows
    created = CreatedApiKey(id=rows[0]["id"], name=body.name, prefix=rows[0]["prefix"], key=rows[0]["key"])
    return _data(created.model_dump(mode="json"), 201)


@router.post("/api-keys/{key_id}/revoke", responses=ERRORS, summary="Revoke an API key at once",
             response_model=dict[str, ApiKey])
async def revoke_api_key(key_id: UUID, user: CurrentUser, pool: Pool) -> JSONResponse:
    rows = await _rows(user, pool, f"update public.api_keys set revoked_at = coalesce(revoked_at, now()) "  # noqa: S608
                       f"where id = %s returning {_KEY_COLUMNS}", (key_id,))
    if isinstance(rows, JSONResponse):
        return rows
    if not rows:
        readable = await _rows(user, pool, "select 1 from public.api_keys where id = %s", (key_id,))
        if isinstance(readable, JSONResponse):
            return readable
        if readable:
            return error(403, "forbidden", "key_id: your role may read this key, not revoke it")
        return error(404, "not_found", "key_id: no such API key")
    return _data(ApiKey(**rows[0]).model_dump(mode="json"))


# ---------------------------------------------------------------- analysts
@router.get("/analysts", responses=ERRORS, summary="Read-only SQL logins of an organization",
            response_model=dict[str, list[Analyst]])
async def analysts(user: CurrentUser, pool: Pool, org_id: OrgId) -> JSONResponse:
    rows = await _rows(user, pool, "select role_name as role, statement_timeout::text as statement_timeout, "
                       "created_at from public.org_analysts(%s)", (org_id,))
    if isinstance(rows, JSONResponse):
        return rows
    return _data([Analyst(**r).model_dump(mode="json") for r in rows])


@router.post("/analysts", status_code=201, responses=ERRORS,
             summary="Create an analyst login (owners); its connection string is shown once",
             response_model=dict[str, CreatedAnalyst])
async def create_analyst(body: NewAnalyst, user: CurrentUser, pool: Pool) -> JSONResponse:
    rows = await _rows(user, pool, "select * from public.create_org_analyst(%s, %s)",
                       (body.org_id, timedelta(seconds=body.timeout_seconds)))
    if isinstance(rows, JSONResponse):
        return rows
    role, password = rows[0]["role_name"], rows[0]["password"]
    url = analyst_connection_string(role, password, get_settings().dsn)
    return _data(CreatedAnalyst(role=role, connection_string=url).model_dump(mode="json"), 201)


@router.delete("/analysts/{role}", status_code=204, responses=ERRORS,
               summary="Drop an analyst login (owners); its sessions end at once")
async def drop_analyst(role: Annotated[str, Path(pattern=r"^tokentra_analyst_[0-9a-f]{12}$")],
                       user: CurrentUser, pool: Pool) -> Response:
    rows = await _rows(user, pool, "select public.drop_org_analyst(%s) as dropped", (role,))
    if isinstance(rows, JSONResponse):
        return rows
    if not rows[0]["dropped"]:
        return error(404, "not_found", "role: no analyst login of that name that you may drop")
    return Response(status_code=204)


app = function_app(router, title="TokenTRA admin")
