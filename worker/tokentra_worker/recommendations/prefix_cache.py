"""Partial response caching: calls that start with the same long prefix (system prompt plus few-shot
examples, a shared document, earlier turns; the SDK sends its hash and its share of the prompt, never
the text) but are not served from the provider's prompt cache. A repeat within the cache's lifetime
of the previous one would read the prefix at the cache-read price; each run of repeats starts with one
cache write (priced above input by some providers). Prices per token come from the pricing table.

Calls whose system prompt alone already makes a context_window_efficiency finding are left to it, so
the same prefix tokens are never claimed twice."""

from __future__ import annotations

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec
from tokentra_worker.recommendations._data import OrgData
from tokentra_worker.recommendations._signals import CACHE_TTL_SECONDS
from tokentra_worker.recommendations.tokens import MAX_CACHED_SHARE, MIN_PREFIX

__all__ = ["partial_response_caching"]

_UNIT = """
select (select c.cost_usd from private.usage_cost(%(p)s, %(m)s, now(), 1000000, 0, 0, 0, 0) c)::float8 as input,
       (select c.cost_usd from private.usage_cost(%(p)s, %(m)s, now(), 1000000, 0, 1000000, 0, 0) c)::float8 as read,
       (select c.cost_usd from private.usage_cost(%(p)s, %(m)s, now(), 1000000, 0, 0, 1000000, 0) c)::float8 as write
"""


def _unit_prices(conn, provider: str, model: str) -> tuple[float, float, float] | None:
    """USD per token of plain input, cache reads and cache writes; None when the model has no price."""
    r = conn.execute(_UNIT, {"p": provider, "m": model}).fetchone()
    if r is None or r["input"] is None:
        return None
    return r["input"] / 1e6, r["read"] / 1e6, r["write"] / 1e6


def _left_to_cwe(data: OrgData) -> set[tuple[str, str, str, str]]:
    """System prompt groups context_window_efficiency reads as cacheable (its own thresholds)."""
    return {
        (p["feature"], p["provider"], p["model"], p["system_prompt_hash"])
        for p in data.prefixes
        if p["requests"] >= 2
        and p["min_input"] >= MIN_PREFIX
        and p["cached_tokens"] <= MAX_CACHED_SHARE * p["input_tokens"]
    }


def partial_response_caching(conn, data: OrgData) -> list[Rec]:
    skip = _left_to_cwe(data)
    prices: dict[tuple[str, str], tuple[float, float, float] | None] = {}
    groups: dict[tuple[str, str, str], dict] = {}
    for p in data.shared_prefixes:
        key = (p["feature"], p["provider"], p["model"])
        if (
            p["prefix_tokens"] < MIN_PREFIX
            or p["cached_tokens"] > MAX_CACHED_SHARE * p["input_tokens"]
            or not p["warm"]
            or (*key, p["system_prompt_hash"]) in skip
        ):
            continue
        if key[1:] not in prices:
            prices[key[1:]] = _unit_prices(conn, key[1], key[2])
        unit = prices[key[1:]]
        if unit is None:
            continue
        inp, read, write = unit
        reads, writes = p["warm"] * p["prefix_tokens"], (p["requests"] - p["warm"]) * p["prefix_tokens"]
        saved = reads * (inp - read) - writes * (write - inp)
        if saved <= 0:  # repeats too sparse: the writes would cost more than the reads save
            continue
        g = groups.setdefault(key, {"saved": 0.0, "prefixes": 0, "requests": 0, "warm": 0, "reads": 0,
                                    "writes": 0, "samples": []})
        g["saved"] += saved
        g["prefixes"] += 1
        g["requests"] += p["requests"]
        g["warm"] += p["warm"]
        g["reads"] += reads
        g["writes"] += writes
        g["samples"] += list(p["samples"] or [])
    out = []
    for (feature, provider, model), g in groups.items():
        scope = data.scopes.get((feature, provider, model), {})
        current = float(scope.get("cost", 0)) * data.monthly
        saved = g["saved"] * data.monthly
        if saved < MIN_MONTHLY_SAVINGS or saved >= current:
            continue
        out.append(_rec(data, feature, provider, model, g, current, saved, scope))
    return out


def _rec(data: OrgData, feature: str, provider: str, model: str, g: dict, current: float, saved: float,
         scope: dict) -> Rec:
    how = (
        "Mark the end of the shared prefix with cache_control (Anthropic), so repeats read it from the cache."
        if provider == "anthropic"
        else "Keep the shared prefix byte-identical (no timestamps or ids inside it) and pass a "
        "prompt_cache_key per prefix, so repeats land on a warm cache."
    )
    return Rec(
        category="partial_response_caching",
        scope_type="feature",
        scope_value=feature,
        key=model,
        title=f"Serve the shared prompt prefixes of feature {feature} on {model} from the prompt cache",
        description=f"{g['warm']:,} of {g['requests']:,} calls of feature `{feature}` on {model} repeat one of "
        f"{g['prefixes']} prompt prefixes (system prompt plus leading messages, at least {MIN_PREFIX} tokens) "
        f"within {CACHE_TTL_SECONDS // 60} minutes of the previous use, yet none is read from the prompt cache.",
        current=current,
        projected=current - saved,
        method=f"prefix tokens (the prefix's character share of the prompt times its input tokens) of calls within "
        f"{CACHE_TTL_SECONDS} s of the previous use of their prefix billed at the cache-read price instead "
        "of input, less the cache-write premium of the first call of each run (pricing table)",
        confidence=0.7,
        risk="low",
        effort="low",
        steps=[
            "Put the static context (instructions, examples, shared documents) first and the variable part last.",
            how,
            "Check cached_tokens in the usage of the next calls.",
        ],
        evidence={
            "requests": int(g["requests"]),
            "cost_per_request": current / data.monthly / max(scope.get("requests", 0), 1),
            "model": model,
            "provider": provider,
            "shared_prefixes": g["prefixes"],
            "warm_requests": int(g["warm"]),
            "cache_read_tokens": int(g["reads"]),
            "cache_write_tokens": int(g["writes"]),
            "cache_ttl_seconds": CACHE_TTL_SECONDS,
            "series": scope.get("series", {}),
            "sample_request_ids": g["samples"][:5],
        },
        suggested_rule={
            "conditions": {"feature": feature, "model": model},
            "action": {"type": "enable_prompt_cache", "ttl_seconds": CACHE_TTL_SECONDS},
        },
    )
