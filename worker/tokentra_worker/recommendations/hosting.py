"""Where and how fast calls go: provider arbitrage (the same model priced lower by another provider in the
pricing tables) and rate-limit tuning (calls refused with 429 that the organization paid for)."""

from __future__ import annotations

import math
import time
from collections import defaultdict

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec, reprice
from tokentra_worker.recommendations._data import OrgData

__all__ = ["provider_arbitrage", "rate_limit_optimization"]

# Providers we would send a customer's traffic to: the model makers' own APIs, the major clouds and the
# established inference hosts. The pricing tables also list resellers and routers; a cheaper price there
# is not advice we would give without knowing their terms, so they are never the target.
HOSTS = {
    "openai", "azure", "anthropic", "google", "aws", "mistral", "deepseek", "x-ai", "groq", "together",
    "fireworks", "zai", "zhipuai",
}
ARBITRAGE_KEEPS = 0.9  # the other provider must cost at most 90% of the current one
RATE_LIMITED_SHARE = 0.02

_HOSTED = """
select distinct p.model_id, p.provider_id from public.model_prices p where p.provider_id = any(%s)
"""
# model -> the HOSTS that list it. Read once per ten minutes, not per organization: the engine runs over
# a thousand organizations in one pass and the pricing tables change far more slowly than that.
_HOSTED_TTL = 600.0
_hosted: tuple[float, dict[str, list[str]]] | None = None


def _hosts_listing(conn) -> dict[str, list[str]]:
    global _hosted
    if _hosted is None or time.monotonic() - _hosted[0] > _HOSTED_TTL:
        by_model: dict[str, list[str]] = defaultdict(list)
        for r in conn.execute(_HOSTED, (sorted(HOSTS),)).fetchall():
            by_model[r["model_id"]].append(r["provider_id"])
        _hosted = (time.monotonic(), {m: sorted(p) for m, p in by_model.items()})
    return _hosted[1]


def provider_arbitrage(conn, data: OrgData) -> list[Rec]:
    out = []
    listing = _hosts_listing(conn)
    for (feature, provider, model), s in data.scopes.items():
        if s["cost"] <= 0:
            continue
        best: tuple[float, str] | None = None
        for other in listing.get(model, []):
            if other == provider:
                continue
            there = reprice(conn, other, model, s["input_tokens"], s["output_tokens"], s["cached_tokens"])
            if there is not None and (best is None or there < best[0]):
                best = (there, other)
        if best is None:
            continue
        here = reprice(conn, provider, model, s["input_tokens"], s["output_tokens"], s["cached_tokens"])
        if not here:
            continue
        current = here * data.monthly
        projected = best[0] * data.monthly
        target = best[1]
        if current - projected < MIN_MONTHLY_SAVINGS or projected > ARBITRAGE_KEEPS * current:
            continue
        n = int(s["requests"])
        out.append(
            Rec(
                category="provider_arbitrage",
                scope_type="feature",
                scope_value=feature,
                key=f"{model}:{target}",
                title=f"Call {model} for feature {feature} through {target} instead of {provider}",
                description=f"{n:,} calls of feature `{feature}` in {data.days:.0f} days ran {model} on {provider}; "
                f"{target} lists the same model at {projected / current:.0%} of the price.",
                current=current,
                projected=projected,
                method="the same input, cached and output tokens priced at both providers' listed prices "
                "today (pricing table)",
                confidence=0.7,
                risk="medium",
                effort="medium",
                steps=[
                    f"Create a {target} account or deployment for {model} and check its limits, region and "
                    "data terms.",
                    f"Route feature {feature} to {target} (apply creates the rule), on a traffic share first.",
                ],
                evidence={
                    "requests": n,
                    "cost_per_request": current / data.monthly / max(n, 1),
                    "model": model,
                    "provider": provider,
                    "target_provider": target,
                    "input_tokens": int(s["input_tokens"]),
                    "output_tokens": int(s["output_tokens"]),
                    "series": s["series"],
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model, "provider": provider},
                    "action": {"type": "route_to_model", "provider": target, "model": model},
                },
            )
        )
    return out


def rate_limit_optimization(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        share = s["rate_limited_calls"] / max(s["requests"], 1)
        wasted = s["rate_limited_cost"] * data.monthly
        if share < RATE_LIMITED_SHARE or wasted < MIN_MONTHLY_SAVINGS:
            continue
        peak = max((s.get("by_hour") or {0: s["requests"] / max(data.days * 24, 1)}).values())
        per_minute = max(1, math.ceil(peak / data.days / 60))
        out.append(
            Rec(
                category="rate_limit_optimization",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Tune the request rate of feature {feature} on {model} ({share:.0%} of calls rate-limited)",
                description=f"{int(s['rate_limited_calls']):,} of {int(s['requests']):,} calls of feature "
                f"`{feature}` were "
                f"refused with 429 and still cost {wasted:,.2f} USD a month.",
                current=s["cost"] * data.monthly,
                projected=s["cost"] * data.monthly - wasted,
                method="the recorded cost of the rate-limited calls, per month",
                confidence=0.7,
                risk="low",
                effort="medium",
                steps=[
                    f"Throttle feature {feature} client-side to about {per_minute} requests a minute "
                    "(its busiest hour's average), queueing bursts instead of sending them.",
                    "Ask the provider for a higher rate-limit tier if the queue grows.",
                    "Honour Retry-After instead of retrying at once.",
                ],
                evidence={
                    "requests": int(s["requests"]),
                    "rate_limited": int(s["rate_limited_calls"]),
                    "rate_limited_share": round(share, 4),
                    "cost_per_request": s["cost"] / max(s["requests"], 1),
                    "model": model,
                    "provider": provider,
                    "series": s["series"],
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {"type": "rate_limit", "requests_per_minute": per_minute},
                },
            )
        )
    return out
