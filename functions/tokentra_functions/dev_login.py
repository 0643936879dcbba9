"""POST /functions/v1/auth/dev-login: trade a one-time code from `tokentra users login` for a user JWT.

Local development only, where no Supabase Auth server runs; on a real project (SUPABASE_URL elsewhere,
or any environment but development) it answers 404 as if it did not exist. The code is spent in SQL
(private.redeem_dev_sign_in_code) on first use, whether or not the answer reaches the client.
"""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.dev_auth import local_sign_in_refusal, mint_user_jwt
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, error, function_app
from tokentra_functions.models import ErrorBody

router = APIRouter(prefix="/auth", tags=["account"])
TOKEN_SECONDS = 8 * 3600


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class SignedIn(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: int
    user_id: UUID
    email: str | None


@router.post(
    "/dev-login",
    response_model=dict[str, SignedIn],
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    summary="Local development only: exchange a one-time sign-in code for a user JWT",
)
async def dev_login(body: CodeIn, pool: Pool) -> JSONResponse:
    settings = get_settings()
    if refusal := local_sign_in_refusal(settings):
        return error(404, "not_found", f"local sign-in is off: {refusal}")
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        row = await (await cur.execute("select * from private.redeem_dev_sign_in_code(%s)", (body.code,))).fetchone()
    if row is None:
        return error(401, "unauthorized", "code: unknown, expired or already used; run `tokentra users login` again")
    token = mint_user_jwt(settings, row["user_id"], row["email"], TOKEN_SECONDS)
    out = SignedIn(access_token=token, expires_at=int(time.time()) + TOKEN_SECONDS, user_id=row["user_id"],
                   email=row["email"])
    return JSONResponse({"data": out.model_dump(mode="json")})


app = function_app(router, title="TokenTRA local sign-in")
