"""Time-based optimization: work that runs at the same hours every day (a scheduled job, not a user
waiting) can go through the provider's batch API at the batch tier's price (pricing table)."""

from __future__ import annotations

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec
from tokentra_worker.recommendations._data import OrgData

__all__ = ["time_based_optimization"]

# Share of a scope's calls that must fall in its busiest hours of the day, and how many hours.
CONCENTRATION = 0.9
HOURS = 2
MIN_DAYS_ACTIVE = 7


def _batch_price(conn, provider: str, model: str, s: dict) -> float | None:
    row = conn.execute(
        "select c.cost_usd::float8 as cost from private.usage_cost(%s, %s, now(), %s, %s, %s, 0, 0, "
        "'batch') c",
        (provider, model, int(s["input_tokens"]), int(s["output_tokens"]), int(s["cached_tokens"])),
    ).fetchone()
    return None if row is None or row["cost"] is None else float(row["cost"])


def time_based_optimization(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        by_hour = s.get("by_hour") or {}
        total = sum(by_hour.values())
        if not total or len(s["series"]) < MIN_DAYS_ACTIVE:
            continue
        top = sorted(by_hour, key=lambda h: by_hour[h], reverse=True)[:HOURS]
        share = sum(by_hour[h] for h in top) / total
        if share < CONCENTRATION:
            continue
        batch = _batch_price(conn, provider, model, s)
        if batch is None:
            continue
        current = s["cost"] * data.monthly
        projected = batch * data.monthly
        if current - projected < MIN_MONTHLY_SAVINGS:
            continue
        hours = ", ".join(f"{h:02d}:00" for h in sorted(top))
        out.append(
            Rec(
                category="time_based_optimization",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Send the scheduled calls of feature {feature} on {model} through the batch API",
                description=f"{share:.0%} of the feature's calls run at {hours} UTC every day: work that can wait "
                f"for the batch API, billed at the batch price.",
                current=current,
                projected=projected,
                method="the same tokens repriced at the batch tier's listed price (pricing table)",
                confidence=0.7,
                risk="low",
                effort="medium",
                steps=[
                    "Collect the scheduled job's requests into a batch file and submit it to the batch API.",
                    "Poll for results; batch jobs complete within 24 hours.",
                ],
                evidence={
                    "requests": int(s["requests"]),
                    "cost_per_request": s["cost"] / max(s["requests"], 1),
                    "model": model,
                    "provider": provider,
                    "busiest_hours_utc": sorted(top),
                    "share_in_busiest_hours": round(share, 4),
                    "series": s["series"],
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {
                        "type": "route_to_model",
                        "provider": provider,
                        "model": model,
                        "service_tier": "batch",
                    },
                },
            )
        )
    return out
