"""API key authentication for the functions the SDK calls."""

from __future__ import annotations

import hashlib
import hmac
import re
from uuid import UUID

from fastapi import Request
from pydantic import BaseModel

from tokentra_core.db import AsyncConn

KEY_SHAPE = re.compile(r"^tt_(live|test)_[A-Za-z0-9_-]{43}$")


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
