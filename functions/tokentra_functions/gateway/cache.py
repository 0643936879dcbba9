"""The semantic cache in the gateway (tokentra_core.cache, the same lookup and store the cache functions
use): for organizations that turned it on, a non-streamed chat or messages call is first looked up (exact
prompt, then a guarded similar one, in the same model and parameter scope); a hit is answered from the
stored response without budget or provider and recorded with what it saved; a miss's answer is stored
after the response, off the request's path. Any failure here leaves the call to the provider."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn
from tokentra_functions.gateway.read_ahead import ReadAhead
from tokentra_functions.gateway.wire import CHAT, MESSAGES

log = logging.getLogger("tokentra.gateway.cache")
# Whether an organization's cache is on, per process, for this long (turning it on applies within it).
SETTINGS_SECONDS = 10.0
# Request fields that are the prompt itself or do not change the answer's content.
_NOT_PARAMS = {"model", "messages", "system", "stream", "stream_options", "metadata", "user", "store"}
_enabled: dict[UUID, tuple[float, bool]] = {}
_tasks: set[asyncio.Task[None]] = set()
_enabled_ahead = ReadAhead("cache setting")


def applies(endpoint: str, stream: bool) -> bool:
    return endpoint in (CHAT, MESSAGES) and not stream


def _parts(body: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    return body.get("messages"), body.get("system"), {k: v for k, v in body.items() if k not in _NOT_PARAMS}


async def enabled(pool: AsyncConnectionPool[AsyncConn], org_id: UUID) -> bool:
    """Whether the organization turned the cache on. Read again ahead of the entry's end by a task of its
    own, so an organization calling steadily never has a call wait for that round trip."""
    now = time.monotonic()
    hit = _enabled.get(org_id)
    if hit is not None and hit[0] > now:
        if _enabled_ahead.due(org_id, hit[0] - now, SETTINGS_SECONDS):
            _enabled_ahead.start(org_id, lambda: _read_enabled(pool, org_id))
        return hit[1]
    return await _read_enabled(pool, org_id)


async def _read_enabled(pool: AsyncConnectionPool[AsyncConn], org_id: UUID) -> bool:
    now = time.monotonic()
    async with pool.connection() as conn:
        cur = await conn.execute("select enabled from public.semantic_cache_settings where org_id = %s", (org_id,))
        row = await cur.fetchone()
    on = bool(row and row["enabled"])
    if len(_enabled) > 100_000:
        _enabled.clear()
    _enabled[org_id] = (now + SETTINGS_SECONDS, on)
    return on


async def lookup(pool: AsyncConnectionPool[AsyncConn], org_id: UUID, model: str, body: dict[str, Any]) -> Any:
    """The cache's LookupResult, or None when the cache cannot answer (off, not cacheable, failing)."""
    try:
        if not await enabled(pool, org_id):
            return None
        from tokentra_core.cache.service import lookup as cache_lookup
        from tokentra_functions.cache import embedder

        messages, system, params = _parts(body)
        async with pool.connection() as conn:
            return await cache_lookup(conn, embedder(), org_id=str(org_id), model=model, messages=messages,
                                      system=system, params=params)
    except Exception as exc:  # the cache is an optimisation: a failure sends the call upstream
        log.warning("cache lookup failed open org=%s: %s", org_id, type(exc).__name__)
        return None


def store_later(pool: AsyncConnectionPool[AsyncConn], org_id: UUID, provider: str, model: str, body: dict[str, Any],
                response: dict[str, Any], tokens: dict[str, int], task_type: str | None) -> None:
    """Keep a miss's answer, after the response has gone (embedding and writing cost time)."""
    async def store() -> None:
        try:
            from tokentra_core.cache.service import store as cache_store
            from tokentra_functions.cache import embedder

            messages, system, params = _parts(body)
            async with pool.connection() as conn:
                await cache_store(conn, embedder(), org_id=str(org_id), provider=provider, model=model,
                                  messages=messages, response=response, input_tokens=tokens["input_tokens"],
                                  output_tokens=tokens["output_tokens"], cached_tokens=tokens["cached_tokens"],
                                  system=system, params=params, task_type=task_type)
        except Exception as exc:
            log.warning("cache store failed org=%s: %s", org_id, type(exc).__name__)

    task = asyncio.get_running_loop().create_task(store(), name="gateway-cache-store")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
