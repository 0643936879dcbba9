"""Local development sign-in: user JWTs minted where no Supabase Auth server runs.

The functions accept HS256 tokens signed with SUPABASE_JWT_SECRET (as Supabase's Auth issues them);
locally nothing issues them, so `tokentra users login` and the dashboard's one-time link do. Never on a
real project: a non-local SUPABASE_URL or JWKS URL, or any environment but development, turns it off.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit
from uuid import UUID

import jwt

from .settings import Settings

__all__ = ["local_sign_in_refusal", "mint_user_jwt"]

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _is_local(url: str | None) -> bool:
    return url is None or (urlsplit(url).hostname or "") in _LOCAL_HOSTS


def local_sign_in_refusal(settings: Settings) -> str | None:
    """Why local sign-in is off here, or None when it may be used."""
    if settings.environment != "development":
        return f"TOKENTRA_ENVIRONMENT is {settings.environment!r}; local sign-in exists only in development"
    if not _is_local(settings.supabase_url):
        return "SUPABASE_URL names a Supabase project: sign in with Supabase Auth there"
    if not _is_local(settings.supabase_jwks_url):
        return "SUPABASE_JWKS_URL names a Supabase project: sign in with Supabase Auth there"
    return None


def mint_user_jwt(settings: Settings, user_id: UUID | str, email: str | None, ttl_seconds: int = 8 * 3600) -> str:
    """A user access token shaped as Supabase Auth's (sub, role, aud, email, exp), for local use only."""
    refusal = local_sign_in_refusal(settings)
    if refusal:
        raise PermissionError(refusal)
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": settings.supabase_jwt_audience,
        "email": email,
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": "tokentra-local",
    }
    return jwt.encode(claims, settings.supabase_jwt_secret, algorithm="HS256")
