"""GET /functions/v1/me: who the token belongs to, their organizations, role and permissions there.

The dashboard hides what a role cannot do from this answer; RLS still decides every query."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel

from tokentra_functions._app import Pool, function_app
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user

router = APIRouter(tags=["account"])


class Membership(BaseModel):
    id: UUID
    name: str
    slug: str | None
    plan: str | None
    role: str
    permissions: list[str]


class Me(BaseModel):
    user_id: UUID
    email: str | None
    organizations: list[Membership]


class MeResponse(BaseModel):
    data: Me


@router.get("/me", response_model=MeResponse, responses={401: {"model": ErrorBody}},
            summary="The signed-in user, their organizations, role and permissions in each")
async def me(user: CurrentUser, pool: Pool) -> JSONResponse:
    async with as_user(pool, user) as conn:
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute("select * from public.my_organizations()")).fetchall()
    email = (user.model_extra or {}).get("email")
    body = MeResponse(data=Me(user_id=user.id, email=email, organizations=[Membership(**r) for r in rows]))
    return JSONResponse(body.model_dump(mode="json"))


app = function_app(router, title="TokenTRA me")
