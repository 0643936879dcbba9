"""Semantic cache lookup and store for one organization, over a database connection: the functions the
HTTP endpoints and the gateway both call. The organization comes from the caller's API key."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokentra_core.cache.embedders import Embedder
from tokentra_core.cache.keys import CacheKey, cache_key
from tokentra_core.db import AsyncConn

__all__ = ["LookupResult", "StoreResult", "lookup", "report_wrong_hit", "store"]

log = logging.getLogger("tokentra.cache")


@dataclass(frozen=True)
class LookupResult:
    outcome: str  # disabled | not_cacheable | exact | semantic | shadow_exact | shadow_semantic | miss
    entry_id: str | None = None
    similarity: float | None = None
    response: Any = None  # the stored provider response (JSON), on real hits only
    saved_input_tokens: int = 0
    saved_output_tokens: int = 0
    saved_usd: Decimal = Decimal(0)
    guard_rejections: int = 0

    @property
    def hit(self) -> bool:
        return self.outcome in ("exact", "semantic")


@dataclass(frozen=True)
class StoreResult:
    outcome: str  # disabled | not_cacheable | stored | shadow
    entry_id: str | None = None


def _vector(values: list[float] | None) -> str | None:
    return None if values is None else "[" + ",".join(f"{v:.7g}" for v in values) + "]"


async def _embedding(embedder: Embedder, key: CacheKey, org_id: str) -> list[float] | None:
    if len(key.prompt) > embedder.max_chars:
        return None  # the vector would not see the whole prompt: exact matches only
    (vector,) = await embedder.embed([key.prompt], org_id=org_id)
    return vector


async def lookup(conn: AsyncConn, embedder: Embedder, *, org_id: str, model: str, messages: Any,
                 system: Any = None, params: Mapping[str, Any] | None = None) -> LookupResult:
    """Exact match, then a guarded similarity match, within the organization and the request's scope."""
    key = cache_key(messages, system, params)
    if key is None:
        return LookupResult("not_cacheable")
    cur = conn.cursor(row_factory=dict_row)  # the caller's connection keeps its own row factory
    await cur.execute("select enabled from public.semantic_cache_settings where org_id = %s", (org_id,))
    row = await cur.fetchone()
    if row is None or not row["enabled"]:
        return LookupResult("disabled")  # no embedding made (and none paid for) while the cache is off
    vector = await _embedding(embedder, key, org_id)
    await cur.execute(
        "select * from private.cache_lookup(%s, %s, %s, %s, %s, %s, %s::extensions.vector, %s, %s, %s, %s, %s, %s,"
        " %s)",
        (org_id, model, key.params_hash, key.system_prompt_hash, key.context_hash, key.prompt_hash, _vector(vector),
         embedder.name, key.guard.guard_key, list(key.guard.polarity), list(key.guard.tokens), key.guard.bag_hash,
         key.guard.seq_hash, embedder.threshold))
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("private.cache_lookup returned no row")
    return LookupResult(
        outcome=row["outcome"], entry_id=str(row["entry_id"]) if row["entry_id"] else None,
        similarity=row["similarity"], response=row["response"], saved_input_tokens=row["input_tokens"],
        saved_output_tokens=row["output_tokens"], saved_usd=Decimal(row["cost_usd"]),
        guard_rejections=row["guard_rejections"])


async def store(conn: AsyncConn, embedder: Embedder, *, org_id: str, provider: str, model: str,
                messages: Any, response: Mapping[str, Any], input_tokens: int, output_tokens: int,
                cached_tokens: int = 0, system: Any = None, params: Mapping[str, Any] | None = None,
                task_type: str | None = None) -> StoreResult:
    """Keep an answer; its cost is what a later hit saves, priced now from the price table."""
    key = cache_key(messages, system, params)
    if key is None:
        return StoreResult("not_cacheable")
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "select s.enabled, o.store_prompts from public.organizations o "
        "left join public.semantic_cache_settings s on s.org_id = o.id where o.id = %s", (org_id,))
    row = await cur.fetchone()
    if row is None or not row["enabled"]:
        return StoreResult("disabled")
    vector = await _embedding(embedder, key, org_id)
    await cur.execute(
        "select * from private.cache_store(%s, %s, %s, %s, %s, %s, %s, %s::extensions.vector, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, coalesce(private.cost_at_current_price(%s, %s, %s, %s, %s), 0), %s)",
        (org_id, provider, model, key.params_hash, key.system_prompt_hash, key.context_hash, key.prompt_hash,
         _vector(vector), embedder.name, key.guard.guard_key, list(key.guard.polarity), list(key.guard.tokens),
         key.guard.bag_hash, key.guard.seq_hash, task_type,
         Jsonb(dict(response)), input_tokens, output_tokens, provider, model, input_tokens, output_tokens,
         cached_tokens, key.prompt if row["store_prompts"] else None))
    result = await cur.fetchone()
    if result is None:
        raise RuntimeError("private.cache_store returned no row")
    return StoreResult(result["outcome"], str(result["entry_id"]) if result["entry_id"] else None)


async def report_wrong_hit(conn: AsyncConn, *, org_id: str, entry_id: str, similarity: float) -> float | None:
    """Raise the entry's own threshold above `similarity`; None when the entry is not the organization's."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("select private.cache_report_wrong_hit(%s, %s, %s) as threshold", (org_id, entry_id, similarity))
    row = await cur.fetchone()
    value = row["threshold"] if row else None
    return float(value) if value is not None else None
