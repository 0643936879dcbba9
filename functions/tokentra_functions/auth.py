"""API key authentication for the functions the SDK calls.

`authorize` reads the key in the database on every request (the strict path, for endpoints that make a
database round trip anyway). `authorize(..., cached=True)` serves a key verified in the last
`api_key_cache_seconds` from memory (KeyCache): a revocation, rotation, scope change or deletion is
announced by the database when it commits (key_changes) and dropped from every process's cache at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tokentra_core.db import AsyncConn, one_async
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, autocommit, error
from tokentra_functions.key_changes import KeyChanges, key_changes

KEY_SHAPE = re.compile(r"^tt_(live|test)_[A-Za-z0-9_-]{43}$")
UNAUTHORIZED = {"error": "unauthorized", "message": "a valid API key is required"}


class ApiKeyOrg(BaseModel):
    key_id: UUID
    org_id: UUID
    project_id: UUID | None
    scopes: list[str]
    mode: str
    rate_limit_per_minute: int


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


async def authenticate(conn: AsyncConn, key: str | None) -> ApiKeyOrg | None:
    """The key's organization, or None for a missing, malformed, unknown, revoked or expired key.

    Callers answer every None the same way so a probe learns nothing about which case it hit."""
    if not key or not KEY_SHAPE.match(key):
        return None
    digest = hashlib.sha256(key.encode()).digest()
    cur = await conn.execute("select * from private.authenticate_api_key(%s)", (digest,))
    row = await cur.fetchone()
    # The lookup is by hash; compare again in constant time so no path depends on a byte-wise compare.
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
        return None
    return ApiKeyOrg(**{k: v for k, v in row.items() if k != "key_hash"})


class KeyCache:
    """Keys verified in the database, per process, by their SHA-256 (never the key itself), each for at most
    `seconds`. Served only while the change listener runs; an expiry date passing is not announced, so a key
    that expires can still be served for up to `seconds`. Unknown and revoked keys are not remembered: each
    such request reads the database."""

    def __init__(self, changes: KeyChanges, seconds: float) -> None:
        self.changes = changes
        self.seconds = seconds
        self.keys: dict[bytes, tuple[float, ApiKeyOrg]] = {}
        changes.subscribe(self.forget)

    async def authenticate(self, pool: Pool, key: str | None) -> ApiKeyOrg | None:
        if not key or not KEY_SHAPE.match(key):
            return None
        digest = hashlib.sha256(key.encode()).digest()
        hit = self.keys.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now and self.changes.listening:
            return hit[1]
        generation = self.changes.generation
        async with autocommit(pool) as conn:
            found = await authenticate(conn, key)
        if found is None:
            self.keys.pop(digest, None)
        elif self.changes.listening and self.changes.generation == generation and self.seconds > 0:
            if len(self.keys) > 100_000:
                self.keys.clear()
            self.keys[digest] = (now + self.seconds, found)
        return found

    def forget(self, payload: str | None) -> None:
        """Drop the keys a change names (key id, or org:<id>); None drops every key."""
        if payload is None:
            self.keys.clear()
            return
        if payload.startswith("org:"):
            gone = [d for d, (_, k) in self.keys.items() if str(k.org_id) == payload[4:]]
        else:
            gone = [d for d, (_, k) in self.keys.items() if str(k.key_id) == payload]
        for digest in gone:
            self.keys.pop(digest, None)


def key_cache(state: Any) -> KeyCache:
    """The app's KeyCache (`app.state`), made on first use."""
    cache: KeyCache | None = getattr(state, "api_key_cache", None)
    if cache is None:
        cache = state.api_key_cache = KeyCache(key_changes(state), get_settings().api_key_cache_seconds)
    else:
        cache.changes.start()
    return cache


def unauthorized() -> JSONResponse:
    return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def authorize(request: Request, pool: Pool, scopes: frozenset[str] = frozenset({"ingest"}),
                    cached: bool = False) -> ApiKeyOrg | JSONResponse:
    """The key's organization, or the 401/429 response to send instead (401 too for a key with none of
    the scopes). The request rate is counted in the database on every request, cached key or not."""
    if cached:
        key = await key_cache(request.app.state).authenticate(pool, presented_key(request))
        if key is None or not scopes & set(key.scopes):
            return unauthorized()
        async with autocommit(pool) as conn:
            cur = await conn.execute("select * from private.take_rate_limit(%s, %s)",
                                     (key.key_id, key.rate_limit_per_minute))
            limit = await one_async(cur)  # the counter's upsert answers one row
    else:
        async with autocommit(pool) as conn:
            key = await authenticate(conn, presented_key(request))
            if key is None or not scopes & set(key.scopes):
                return unauthorized()
            cur = await conn.execute("select * from private.take_rate_limit(%s, %s)",
                                     (key.key_id, key.rate_limit_per_minute))
            limit = await one_async(cur)
    if not limit["allowed"]:
        return error(429, "rate_limited", "the API key's request rate limit is exceeded",
                     {"Retry-After": str(max(1, limit["retry_after"]))})
    return key
