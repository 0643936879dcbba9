"""Business outcome attribution: cost per end user. An end user whose calls cost several times the
organization's typical user, and who carries a large share of its spend, is a pricing or quota decision
(or abuse); the savings are what that user costs above the typical cost per request."""

from __future__ import annotations

import statistics

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec
from tokentra_worker.recommendations._data import OrgData

__all__ = ["business_outcome_attribution"]

RATIO = 5.0  # cost per request against the median user's
SHARE = 0.2  # of the organization's spend
MIN_USERS = 5


def business_outcome_attribution(conn, data: OrgData) -> list[Rec]:
    users = data.users
    if len(users) < MIN_USERS:
        return []
    total = sum(u["cost"] for u in users)
    typical = statistics.median(u["cost"] / max(u["requests"], 1) for u in users)
    out = []
    for u in users:
        cpr = u["cost"] / max(u["requests"], 1)
        if total <= 0 or typical <= 0 or cpr < RATIO * typical or u["cost"] < SHARE * total:
            continue
        current = u["cost"] * data.monthly
        projected = u["requests"] * typical * data.monthly
        if current - projected < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="business_outcome_attribution",
                scope_type="end_user",
                scope_value=u["end_user_id"],
                key="cost_per_request",
                title=f"End user {u['end_user_id']} costs {cpr / typical:.0f}x the typical user per request",
                description=f"End user {u['end_user_id']} made {int(u['requests']):,} calls costing "
                f"{u['cost'] / total:.0%} of the organization's spend, at ${cpr:.4f} per call against "
                f"${typical:.4f} for the median user.",
                current=current,
                projected=projected,
                method="the user's cost above the median user's cost per request, per month",
                confidence=0.5,
                risk="medium",
                effort="medium",
                steps=[
                    "Check the user's plan covers this usage; add a per-user quota or price tier.",
                    "Look for automated or abusive use (request ids in the evidence).",
                ],
                evidence={
                    "requests": int(u["requests"]),
                    "cost_per_request": cpr,
                    "median_cost_per_request": typical,
                    "share_of_spend": round(u["cost"] / total, 4),
                    "series": u["series"],
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"end_user_id": u["end_user_id"]},
                    "action": {
                        "type": "rate_limit",
                        "max_cost_per_day": round(typical * u["requests"] / data.days, 4),
                    },
                },
            )
        )
    return out
