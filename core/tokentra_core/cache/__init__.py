"""The semantic cache: keys and the lexical guard, pluggable embedders, and lookup/store over SQL.

    embedder = make_embedder(settings.cache_embedder, llm)
    result = await lookup(conn, embedder, org_id=org, model="gpt-4o", messages=msgs, params={"temperature": 0})
    if result.hit: ...   # result.response is the stored provider response
    await store(conn, embedder, org_id=org, provider="openai", model="gpt-4o", messages=msgs, response=..., ...)

Used by the HTTP functions (for the SDK) and by the gateway, in process.
"""

from tokentra_core.cache.embedders import Embedder, LocalOnnxEmbedder, ProviderEmbedder, make_embedder
from tokentra_core.cache.guard import GuardFeatures, guard_features, normalize_prompt, refuses
from tokentra_core.cache.keys import CacheKey, cache_key
from tokentra_core.cache.service import LookupResult, StoreResult, lookup, report_wrong_hit, store

__all__ = [
    "CacheKey",
    "Embedder",
    "GuardFeatures",
    "LocalOnnxEmbedder",
    "LookupResult",
    "ProviderEmbedder",
    "StoreResult",
    "cache_key",
    "guard_features",
    "lookup",
    "make_embedder",
    "normalize_prompt",
    "refuses",
    "report_wrong_hit",
    "store",
]
