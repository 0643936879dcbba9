"""Supabase user JWTs for the analytics functions: verify the token, then run SQL as that user.

Tokens are HS256 signed with SUPABASE_JWT_SECRET (what `supabase start` and legacy projects issue), or
RS256/ES256 with a key from the project's JWKS when SUPABASE_JWKS_URL is set. Every query then runs in a
transaction as `authenticated` with the token's claims in `request.jwt.claims`, exactly as PostgREST
does, so RLS (not this module) decides what the user may see.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Annotated, Any, Literal
from uuid import UUID

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, ValidationError

from tokentra_core.db import AsyncConn, one_async
from tokentra_core.settings import get_settings

__all__ = [
    "CurrentUser",
    "forbidden_unless",
    "Unauthorized",
    "UserClaims",
    "as_user",
    "install",
    "signed_in",
    "unauthorized",
    "verify",
]

_ASYMMETRIC = ["RS256", "ES256"]


class UserClaims(BaseModel):
    """The claims we rely on; everything else in the token is passed through to SQL untouched."""

    model_config = ConfigDict(extra="allow")

    sub: UUID
    role: Literal["authenticated"]
    exp: int

    @property
    def id(self) -> UUID:
        return self.sub


class Unauthorized(Exception):
    """A missing, malformed, expired or wrongly signed token. Every case answers the same 401."""


@lru_cache(maxsize=4)
def _jwks(url: str) -> jwt.PyJWKClient:
    # The client caches the key set and refetches on an unknown key id (key rotation).
    return jwt.PyJWKClient(url, cache_keys=True)


def verify(token: str) -> UserClaims:
    """The token's claims, or Unauthorized. The algorithm is never taken on the token's word alone:
    HS256 is checked against the secret, asymmetric ones only against the configured JWKS."""
    settings = get_settings()
    try:
        alg = jwt.get_unverified_header(token).get("alg")
        if alg == "HS256":
            key: Any = settings.supabase_jwt_secret
            algorithms = ["HS256"]
        elif alg in _ASYMMETRIC and settings.supabase_jwks_url:
            key = _jwks(settings.supabase_jwks_url).get_signing_key_from_jwt(token).key
            algorithms = _ASYMMETRIC
        else:
            raise Unauthorized
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.supabase_jwt_audience,
            options={"require": ["exp", "sub"]},
        )
        return UserClaims.model_validate(claims)
    except (jwt.PyJWTError, ValidationError) as exc:
        raise Unauthorized from exc


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


async def current_user(request: Request) -> UserClaims:
    token = _bearer(request)
    if not token:
        raise Unauthorized
    return verify(token)


CurrentUser = Annotated[UserClaims, Depends(current_user)]


def signed_in(request: Request) -> UserClaims | None:
    """The verified user, or None: for handlers that answer the 401 themselves (see unauthorized())."""
    try:
        token = _bearer(request)
        return verify(token) if token else None
    except Unauthorized:
        return None


@asynccontextmanager
async def as_user(pool: AsyncConnectionPool[AsyncConn], user: UserClaims) -> AsyncIterator[AsyncConn]:
    """A pooled connection inside a transaction running as `authenticated` with the user's claims.
    Both settings are transaction-local, so the connection goes back to the pool as it came. Pipeline
    mode sends BEGIN, the settings and the caller's query in one round trip."""
    async with pool.connection() as conn, conn.pipeline(), conn.transaction():
        await conn.execute("set local role authenticated")
        await conn.execute(
            "select set_config('request.jwt.claims', %s, true)", (json.dumps(user.model_dump(mode="json")),)
        )
        yield conn


async def forbidden_unless(
    pool: AsyncConnectionPool[AsyncConn], user: UserClaims, permission: str, org_id: UUID | None
) -> JSONResponse | None:
    """403 when the user may not read what they asked for, instead of the empty answer RLS would give:
    without org_id, when no organization of theirs grants `permission`; with it, when that one does not.
    None when they may. The permission matrix is SQL's (private.role_permissions)."""
    async with as_user(pool, user) as conn:
        cur = await conn.execute(
            "select case when %(org)s::uuid is null then cardinality(private.org_ids_with(%(perm)s)) > 0 "
            "else private.has_permission(%(org)s::uuid, %(perm)s) end as allowed",
            {"org": org_id, "perm": permission},
        )
        allowed = (await one_async(cur))["allowed"]
    if allowed:
        return None
    where = f"organization {org_id}" if org_id else "any of your organizations"
    return JSONResponse(
        {"error": "forbidden",
         "message": f"your role in {where} does not include {permission}; ask an owner for a role that does"},
        status_code=403,
    )


def unauthorized() -> JSONResponse:
    """The one 401 answer: the same body whatever was wrong with the token."""
    return JSONResponse(
        {"error": "unauthorized", "message": "a valid Supabase user JWT is required"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return unauthorized()


def install(app: FastAPI) -> FastAPI:
    """Answer Unauthorized with the functions' error body (401) on app."""
    app.add_exception_handler(Unauthorized, _unauthorized)
    return app
