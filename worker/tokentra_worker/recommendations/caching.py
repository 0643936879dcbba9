"""Repeated prompts: the same prompt hash again within a minute (request_deduplication) or later
without a cache hit (semantic_caching; exact repeats are its lower bound)."""

from __future__ import annotations

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec
from tokentra_worker.recommendations._data import DEDUP_SECONDS, OrgData

__all__ = ["request_deduplication", "semantic_caching"]

MIN_SHARE = 0.05


def request_deduplication(conn, data: OrgData) -> list[Rec]:
    out = []
    for r in data.repeats:
        wasted = float(r["dup_cost"]) * data.monthly
        if r["dup_requests"] < MIN_SHARE * r["hashed_requests"] or wasted < MIN_MONTHLY_SAVINGS:
            continue
        scope = data.scopes.get((r["feature"], r["provider"], r["model"]), {})
        current = float(scope.get("cost", 0)) * data.monthly
        out.append(
            Rec(
                "request_deduplication",
                "feature",
                r["feature"],
                r["model"],
                f"Deduplicate identical requests of feature {r['feature']} on {r['model']}",
                f"{int(r['dup_requests']):,} calls repeated the same prompt within {DEDUP_SECONDS} "
                f"s of an identical one.",
                current,
                current - wasted,
                f"cost of calls repeating a prompt within {DEDUP_SECONDS} s, per month",
                0.85,
                "low",
                "low",
                [
                    "Coalesce in-flight identical requests (single-flight) in the client.",
                    "Debounce user actions that resend the same prompt.",
                ],
                {
                    "requests": int(r["dup_requests"]),
                    "cost_per_request": float(r["dup_cost"]) / max(r["dup_requests"], 1),
                    "model": r["model"],
                    "provider": r["provider"],
                    "series": scope.get("series", {}),
                    "sample_request_ids": list(r["samples"] or []),
                },
                {
                    "conditions": {"feature": r["feature"], "model": r["model"]},
                    "action": {"type": "enable_cache", "ttl_seconds": DEDUP_SECONDS},
                },
            )
        )
    return out


def semantic_caching(conn, data: OrgData) -> list[Rec]:
    out = []
    for r in data.repeats:
        wasted = float(r["repeat_cost"]) * data.monthly
        if r["repeat_requests"] < MIN_SHARE * r["hashed_requests"] or wasted < MIN_MONTHLY_SAVINGS:
            continue
        scope = data.scopes.get((r["feature"], r["provider"], r["model"]), {})
        current = float(scope.get("cost", 0)) * data.monthly
        out.append(
            Rec(
                "semantic_caching",
                "feature",
                r["feature"],
                r["model"],
                f"Cache responses of feature {r['feature']} on {r['model']}",
                f"{int(r['repeat_requests']):,} calls asked a prompt already answered earlier, "
                f"without a cache hit.",
                current,
                current - wasted,
                "cost of exact repeats answered again (a lower bound: semantic matches add to it), per month",
                0.75,
                "medium",
                "medium",
                [
                    "Enable the semantic cache for this feature (apply creates the rule).",
                    "Pick a similarity threshold on a sample before enabling it for all traffic.",
                ],
                {
                    "requests": int(r["repeat_requests"]),
                    "cost_per_request": float(r["repeat_cost"]) / max(r["repeat_requests"], 1),
                    "model": r["model"],
                    "provider": r["provider"],
                    "series": scope.get("series", {}),
                    "sample_request_ids": list(r["samples"] or []),
                },
                {
                    "conditions": {"feature": r["feature"], "model": r["model"]},
                    "action": {"type": "enable_cache", "similarity_threshold": 0.95},
                },
            )
        )
    return out
