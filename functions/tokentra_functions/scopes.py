"""Teams and projects: /functions/v1/teams and /functions/v1/projects, for signed-in users.

The names usage tags carry become rows by themselves (a minute job, or the budget that names one first);
these endpoints list them and create the ones no usage has named yet, so a budget or an alert rule can
name a team before its first call. RLS decides: admins and owners write, members read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.db import one_async
from tokentra_functions._app import Envelope, Pool, envelope, function_app
from tokentra_functions._db_errors import db_error
from tokentra_functions._inputs import Text
from tokentra_functions.models import ErrorBody
from tokentra_functions.user_auth import CurrentUser, as_user, forbidden_unless

router = APIRouter(tags=["teams and projects"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody},
}
Name = Annotated[Text, Field(min_length=1, max_length=200, description="As the SDK's tags carry it.")]
Kind = Literal["teams", "projects"]


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID
    name: Name


class ProjectIn(TeamIn):
    team_id: UUID | None = Field(default=None, description="The team the project belongs to, if any.")


class Team(BaseModel):
    id: UUID
    org_id: UUID
    name: str
    created_at: datetime


class Project(Team):
    team_id: UUID | None


# Fixed statements per kind: table and column names never come from a request.
LIST_SQL = {
    "teams": "select id, org_id, name, created_at from public.teams "
             "where %(org)s::uuid is null or org_id = %(org)s order by org_id, name",
    "projects": "select id, org_id, team_id, name, created_at from public.projects "
                "where %(org)s::uuid is null or org_id = %(org)s order by org_id, name",
}
INSERT_SQL = {
    "teams": "insert into public.teams (org_id, name) values (%(org_id)s, %(name)s) "
             "returning id, org_id, name, created_at",
    "projects": "insert into public.projects (org_id, name, team_id) values (%(org_id)s, %(name)s, %(team_id)s) "
                "returning id, org_id, team_id, name, created_at",
}


async def _list(kind: Kind, model: type[Team], user: CurrentUser, pool: Pool, org_id: UUID | None) -> JSONResponse:
    if (refused := await forbidden_unless(pool, user, f"{kind}.read", org_id)) is not None:
        return refused
    async with as_user(pool, user) as conn:
        cur = await conn.execute(LIST_SQL[kind], {"org": org_id})
        rows = await cur.fetchall()
    return envelope([model(**r).model_dump(mode="json") for r in rows], {"count": len(rows)})


async def _create(kind: Kind, model: type[Team], body: TeamIn, user: CurrentUser, pool: Pool) -> JSONResponse:
    try:
        async with as_user(pool, user) as conn:
            cur = await conn.execute(INSERT_SQL[kind], {"team_id": None, **body.model_dump()})
            row = await one_async(cur)  # insert ... returning: the row, or an exception
    except psycopg.Error as exc:
        if exc.sqlstate == "23505":
            return JSONResponse({"error": "conflict", "message": f"name: {body.name!r} already exists in this "
                                 "organization"}, status_code=409)
        if (answer := db_error(exc)) is None:
            raise
        return answer
    return envelope(model(**row).model_dump(mode="json"), status=201)


@router.get("/teams", response_model=Envelope[list[Team]], responses=ERRORS,
            summary="Teams, those created from usage tags included")
async def list_teams(user: CurrentUser, pool: Pool, org_id: UUID | None = None) -> JSONResponse:
    return await _list("teams", Team, user, pool, org_id)


@router.post("/teams", status_code=201, response_model=Envelope[Team], responses=ERRORS,
             summary="Create a team no usage has named yet, so budgets and alerts can name it")
async def create_team(body: TeamIn, user: CurrentUser, pool: Pool) -> JSONResponse:
    return await _create("teams", Team, body, user, pool)


@router.get("/projects", response_model=Envelope[list[Project]], responses=ERRORS,
            summary="Projects, those created from usage tags included")
async def list_projects(user: CurrentUser, pool: Pool, org_id: UUID | None = None) -> JSONResponse:
    return await _list("projects", Project, user, pool, org_id)


@router.post("/projects", status_code=201, response_model=Envelope[Project], responses=ERRORS,
             summary="Create a project no usage has named yet, so budgets and alerts can name it")
async def create_project(body: ProjectIn, user: CurrentUser, pool: Pool) -> JSONResponse:
    return await _create("projects", Project, body, user, pool)


app = function_app(router, title="TokenTRA teams and projects")
