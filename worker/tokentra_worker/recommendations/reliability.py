"""Spend that buys nothing: failed calls (error_reduction), retries (retry_storm_detection)
and timed-out calls (timeout_cost_analysis). Savings are the money those calls cost."""

from __future__ import annotations

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec
from tokentra_worker.recommendations._data import OrgData

__all__ = ["abandoned_request_detection", "error_reduction", "retry_storm_detection", "timeout_cost_analysis"]

ERROR_RATE = 0.05
RETRY_RATE = 0.10
TIMEOUT_RATE = 0.02


def _evidence(s: dict, model: str, provider: str, **more) -> dict:
    return {
        "requests": int(s["requests"]),
        "cost_per_request": s["cost"] / max(s["requests"], 1),
        "model": model,
        "provider": provider,
        "series": s["series"],
        "sample_request_ids": [],
        **more,
    }


def error_reduction(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        rate = s["errors"] / max(s["requests"], 1)
        wasted = s["error_cost"] * data.monthly
        if rate < ERROR_RATE or wasted < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="error_reduction",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Fix the {rate:.0%} error rate of feature {feature} on {model}",
                description=f"{int(s['errors']):,} of {int(s['requests']):,} calls failed; each was billed and "
                f"produced nothing.",
                current=s["cost"] * data.monthly,
                projected=s["cost"] * data.monthly - wasted,
                method="cost of the calls that ended in error, per month",
                confidence=0.7,
                risk="low",
                effort="medium",
                steps=[
                    "Group the errors by error_code (usage_records) and fix the most frequent cause.",
                    "Validate requests client-side before sending them.",
                ],
                evidence=_evidence(
                    s,
                    model,
                    provider,
                    error_rate=round(rate, 4),
                    errors=int(s["errors"]),
                    wasted_cost=round(wasted, 4),
                ),
            )
        )
    return out


def retry_storm_detection(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        rate = s["retries"] / max(s["requests"], 1)
        per_call = s["cost"] / max(s["requests"], 1)
        wasted = s["retries"] * per_call * data.monthly
        if rate < RETRY_RATE or wasted < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="retry_storm_detection",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Stop the retry storm of feature {feature} on {model} ({rate:.1f} retries per call)",
                description=f"{int(s['retries']):,} retries over {int(s['requests']):,} calls: each retry bills "
                f"the call again.",
                current=s["cost"] * data.monthly + wasted,
                projected=s["cost"] * data.monthly,
                method="retries times the mean cost of a call, per month",
                confidence=0.65,
                risk="low",
                effort="low",
                steps=["Retry with exponential backoff and jitter, at most twice.", "Do not retry 4xx errors."],
                evidence=_evidence(s, model, provider, retries=int(s["retries"]), retry_rate=round(rate, 4)),
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {"type": "rate_limit", "max_retries": 2},
                },
            )
        )
    return out


def timeout_cost_analysis(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        rate = s["timeouts"] / max(s["requests"], 1)
        wasted = s["timeout_cost"] * data.monthly
        if rate < TIMEOUT_RATE or wasted < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="timeout_cost_analysis",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Cut the cost of timeouts of feature {feature} on {model} ({rate:.0%} of calls)",
                description=f"{int(s['timeouts']):,} calls timed out after being billed for their tokens.",
                current=s["cost"] * data.monthly,
                projected=s["cost"] * data.monthly - wasted,
                method="cost of the calls that timed out, per month",
                confidence=0.6,
                risk="medium",
                effort="medium",
                steps=[
                    "Stream the response or lower max_tokens so calls finish within the client timeout.",
                    "Raise the client timeout where the caller can wait.",
                ],
                evidence=_evidence(
                    s,
                    model,
                    provider,
                    timeouts=int(s["timeouts"]),
                    timeout_rate=round(rate, 4),
                    wasted_cost=round(wasted, 4),
                ),
            )
        )
    return out


ABANDON_RATE = 0.02


def abandoned_request_detection(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        rate = s["cancelled"] / max(s["requests"], 1)
        wasted = s["cancelled_cost"] * data.monthly
        if rate < ABANDON_RATE or wasted < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="abandoned_request_detection",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Stop paying for abandoned calls of feature {feature} on {model} ({rate:.0%} cancelled)",
                description=f"{int(s['cancelled']):,} calls were cancelled by the client after tokens were billed.",
                current=s["cost"] * data.monthly,
                projected=s["cost"] * data.monthly - wasted,
                method="cost of the calls that ended cancelled, per month",
                confidence=0.6,
                risk="low",
                effort="medium",
                steps=[
                    "Stream responses and stop generation (close the stream) when the user leaves.",
                    "Lower max_tokens where users rarely read to the end.",
                ],
                evidence=_evidence(
                    s,
                    model,
                    provider,
                    cancelled=int(s["cancelled"]),
                    abandon_rate=round(rate, 4),
                    wasted_cost=round(wasted, 4),
                ),
            )
        )
    return out
