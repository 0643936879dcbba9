"""Quality-cost Pareto: per feature, the models it uses, each with its cost per call and the mean quality
score customers sent for its calls (POST /feedback). A model whose calls another model would serve for
less, at a quality we are 95% sure is at most QUALITY_TOLERANCE lower, is off the frontier: move its
calls to the cheapest such model (the frontier's point nearest in quality at the lowest cost). The
evidence carries every scored model as a (cost per call, quality) point, frontier marked, for a chart."""

from __future__ import annotations

import math
from collections import defaultdict

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec, reprice
from tokentra_worker.recommendations._data import OrgData

__all__ = ["QUALITY_TOLERANCE", "quality_cost_pareto"]

QUALITY_TOLERANCE = 0.02  # the most mean quality (on the 0..1 scale) a cheaper model may lose
MIN_SCORED = 30  # scored calls a model needs before its mean quality is compared
Z_ONE_SIDED_95 = 1.645
MAX_PROJECTED_SHARE = 0.9  # a move saving under 10% is not worth the risk of a model change


def _quality_drop_bound(cur: dict, cand: dict) -> float:
    """Upper 95% bound of (current quality - candidate quality), from the two samples' means and spreads."""
    se = math.sqrt(cur["quality_sd"] ** 2 / cur["scored"] + cand["quality_sd"] ** 2 / cand["scored"])
    return cur["quality"] - cand["quality"] + Z_ONE_SIDED_95 * se


def _frontier(models: list[dict]) -> list[dict]:
    """Chart-ready points (cost per call, quality) of a feature's scored models, frontier marked."""
    points = [
        {
            "model": m["model"],
            "provider": m["provider"],
            "cost_per_request": m["cost"] / max(m["requests"], 1),
            "quality": round(m["quality"], 4),
            "scored_requests": int(m["scored"]),
        }
        for m in models
    ]
    for p in points:
        p["on_frontier"] = not any(
            o is not p
            and o["cost_per_request"] <= p["cost_per_request"]
            and o["quality"] >= p["quality"]
            and (o["cost_per_request"] < p["cost_per_request"] or o["quality"] > p["quality"])
            for o in points
        )
    return sorted(points, key=lambda p: p["cost_per_request"])


def quality_cost_pareto(conn, data: OrgData) -> list[Rec]:
    by_feature: dict[str, list[dict]] = defaultdict(list)
    for q in data.quality:
        if q["scored"] >= MIN_SCORED and q["quality"] is not None:
            by_feature[q["feature"]].append(q)
    out = []
    for feature, models in by_feature.items():
        if len(models) < 2:
            continue
        frontier = _frontier(models)
        for cur in models:
            current = cur["cost"] * data.monthly
            best = None
            for cand in models:
                if cand is cur or _quality_drop_bound(cur, cand) > QUALITY_TOLERANCE:
                    continue
                at = reprice(
                    conn,
                    cand["provider"],
                    cand["model"],
                    cur["input_tokens"],
                    cur["output_tokens"],
                    cur["cached_tokens"],
                )
                if at is not None and (best is None or at < best[1]):
                    best = (cand, at)
            if best is None:
                continue
            cand, projected = best[0], best[1] * data.monthly
            if current - projected < MIN_MONTHLY_SAVINGS or projected > MAX_PROJECTED_SHARE * current:
                continue
            out.append(_rec(data, feature, cur, cand, current, projected, frontier))
    return out


def _rec(data: OrgData, feature: str, cur: dict, cand: dict, current: float, projected: float,
         frontier: list[dict]) -> Rec:
    n = int(cur["requests"])
    drop = cur["quality"] - cand["quality"]
    return Rec(
        category="quality_cost_pareto",
        scope_type="feature",
        scope_value=feature,
        key=cur["model"],
        title=f"Move feature {feature} from {cur['model']} to {cand['model']}: same quality, "
        f"{1 - projected / current:.0%} cheaper",
        description=f"Feature `{feature}` scored {cur['quality']:.3f} on {cur['model']} ({int(cur['scored']):,} scored "
        f"calls) and {cand['quality']:.3f} on {cand['model']} ({int(cand['scored']):,} scored calls): "
        f"{'a drop' if drop > 0 else 'a gain'} of {abs(drop):.3f}, within the {QUALITY_TOLERANCE} tolerance "
        f"at 95% confidence. The {n:,} calls on {cur['model']} would cost {projected / current:.0%} as much "
        f"on {cand['model']}.",
        current=current,
        projected=projected,
        method=f"the successful calls' input, cached and output tokens on {cur['model']} repriced at "
        f"{cand['model']}'s listed price (pricing table); assumes the same token counts on both models and "
        f"that the scored calls represent the feature's traffic",
        confidence=0.7 if min(cur["scored"], cand["scored"]) >= 200 else 0.55,
        risk="medium",
        effort="low",
        steps=[
            f"Route feature {feature} from {cur['model']} to {cand['model']} on a traffic share first "
            "(apply creates the rule; pass traffic_share).",
            "Keep sending quality feedback; the next run compares the two models on the new traffic.",
            "Go to 100% once the quality on the share stays within the tolerance.",
        ],
        evidence={
            "requests": n,
            "cost_per_request": current / data.monthly / max(n, 1),
            "model": cur["model"],
            "provider": cur["provider"],
            "target_model": cand["model"],
            "target_provider": cand["provider"],
            "quality": round(cur["quality"], 4),
            "target_quality": round(cand["quality"], 4),
            "quality_tolerance": QUALITY_TOLERANCE,
            "quality_drop_upper_95": round(_quality_drop_bound(cur, cand), 4),
            "scored_requests": int(cur["scored"]),
            "target_scored_requests": int(cand["scored"]),
            "frontier": frontier,
            "series": data.scopes.get((feature, cur["provider"], cur["model"]), {}).get("series", {}),
            "sample_request_ids": list(cur["samples"] or []),
        },
        suggested_rule={
            "conditions": {"feature": feature, "model": cur["model"]},
            "action": {"type": "route_to_model", "provider": cand["provider"], "model": cand["model"]},
        },
    )
