"""API key authentication for the functions the SDK calls.

`authorize` reads the key in the database on every request (the strict path, for endpoints that make a
database round trip anyway). `authorize(..., cached=True)` serves a key verified in the last
`api_key_cache_seconds` from memory (KeyCache): a revocation, rotation, scope change or deletion is
announced by the database when it commits (key_changes) and dropped from every process's cache at once;
its requests are counted against its rate limit after the answer, so such a request makes no database
round trip at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
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

log = logging.getLogger("tokentra.functions")
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
    such request reads the database.

    Requests of cached keys are counted in the database off the request's path (`count`): every request
    is counted, and once the count refuses one, the key's requests are refused here until its window
    ends. So a key passes its rate limit by at most the requests admitted while their counts were on the
    way (with one client calling in turn, one request)."""

    def __init__(self, changes: KeyChanges, seconds: float) -> None:
        self.changes = changes
        self.seconds = seconds
        self.keys: dict[bytes, tuple[float, ApiKeyOrg]] = {}
        self.refused_until: dict[UUID, float] = {}  # key id -> monotonic time its window ends
        self._counting: set[asyncio.Task[None]] = set()
        changes.subscribe(self.forget)

    def refused_for(self, key_id: UUID) -> int:
        """Whole seconds until the key's rate window ends when its limit was reached, else 0."""
        until = self.refused_until.get(key_id)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            self.refused_until.pop(key_id, None)
            return 0
        return max(1, int(left + 0.999))

    def count(self, pool: Pool, key: ApiKeyOrg) -> None:
        task = asyncio.get_running_loop().create_task(self._count(pool, key))
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def _count(self, pool: Pool, key: ApiKeyOrg) -> None:
        try:
            async with autocommit(pool) as conn:
                cur = await conn.execute("select * from private.take_rate_limit(%s, %s)",
                                         (key.key_id, key.rate_limit_per_minute))
                limit = await one_async(cur)  # the counter's upsert answers one row
        except Exception as exc:  # the request was answered; the next request's count tries again
            log.warning("counting an API key's request failed: %s", type(exc).__name__)
            return
        if not limit["allowed"]:
            if len(self.refused_until) > 100_000:
                self.refused_until.clear()
            self.refused_until[key.key_id] = time.monotonic() + max(1, limit["retry_after"])

    async def drain(self) -> None:
        """Wait for the counts on their way (before the pool closes)."""
        if self._counting:
            await asyncio.gather(*self._counting, return_exceptions=True)

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
        hooks = getattr(state, "on_close", None)
        if hooks is not None:
            hooks.insert(0, cache.drain)
    else:
        cache.changes.start()
    return cache


def unauthorized() -> JSONResponse:
    return JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def authorize(request: Request, pool: Pool, scopes: frozenset[str] = frozenset({"ingest"}),
                    cached: bool = False) -> ApiKeyOrg | JSONResponse:
    """The key's organization, or the 401/429 response to send instead (401 too for a key with none of
    the scopes). Every request is counted against the key's rate limit in the database: before the answer
    on the strict path, after it for a cached key (see KeyCache)."""
    if cached:
        cache = key_cache(request.app.state)
        key = await cache.authenticate(pool, presented_key(request))
        if key is None or not scopes & set(key.scopes):
            return unauthorized()
        retry_after = cache.refused_for(key.key_id)
        if retry_after:
            return _rate_limited(retry_after)
        cache.count(pool, key)
        return key
    else:
        async with autocommit(pool) as conn:
            key = await authenticate(conn, presented_key(request))
            if key is None or not scopes & set(key.scopes):
                return unauthorized()
            cur = await conn.execute("select * from private.take_rate_limit(%s, %s)",
                                     (key.key_id, key.rate_limit_per_minute))
            limit = await one_async(cur)
    if not limit["allowed"]:
        return _rate_limited(max(1, limit["retry_after"]))
    return key


def _rate_limited(retry_after: int) -> JSONResponse:
    return error(429, "rate_limited", "the API key's request rate limit is exceeded",
                 {"Retry-After": str(retry_after)})
