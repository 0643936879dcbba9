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
                category="request_deduplication",
                scope_type="feature",
                scope_value=r["feature"],
                key=r["model"],
                title=f"Deduplicate identical requests of feature {r['feature']} on {r['model']}",
                description=f"{int(r['dup_requests']):,} calls repeated the same prompt within {DEDUP_SECONDS} "
                f"s of an identical one.",
                current=current,
                projected=current - wasted,
                method=f"cost of calls repeating a prompt within {DEDUP_SECONDS} s, per month",
                confidence=0.85,
                risk="low",
                effort="low",
                steps=[
                    "Coalesce in-flight identical requests (single-flight) in the client.",
                    "Debounce user actions that resend the same prompt.",
                ],
                evidence={
                    "requests": int(r["dup_requests"]),
                    "cost_per_request": float(r["dup_cost"]) / max(r["dup_requests"], 1),
                    "model": r["model"],
                    "provider": r["provider"],
                    "series": scope.get("series", {}),
                    "sample_request_ids": list(r["samples"] or []),
                },
                suggested_rule={
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
                category="semantic_caching",
                scope_type="feature",
                scope_value=r["feature"],
                key=r["model"],
                title=f"Cache responses of feature {r['feature']} on {r['model']}",
                description=f"{int(r['repeat_requests']):,} calls asked a prompt already answered earlier, "
                f"without a cache hit.",
                current=current,
                projected=current - wasted,
                method="cost of exact repeats answered again (a lower bound: semantic matches add to it), per month",
                confidence=0.75,
                risk="medium",
                effort="medium",
                steps=[
                    "Enable the semantic cache for this feature (apply creates the rule).",
                    "Pick a similarity threshold on a sample before enabling it for all traffic.",
                ],
                evidence={
                    "requests": int(r["repeat_requests"]),
                    "cost_per_request": float(r["repeat_cost"]) / max(r["repeat_requests"], 1),
                    "model": r["model"],
                    "provider": r["provider"],
                    "series": scope.get("series", {}),
                    "sample_request_ids": list(r["samples"] or []),
                },
                suggested_rule={
                    "conditions": {"feature": r["feature"], "model": r["model"]},
                    "action": {"type": "enable_cache", "similarity_threshold": 0.95},
                },
            )
        )
    return out
