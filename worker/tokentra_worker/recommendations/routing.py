"""Model choice: task-aware routing (simple tasks on premium models) and model version optimization
(superseded snapshots). Projected costs reprice the same tokens at the target model's listed price."""

from __future__ import annotations

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec, reprice
from tokentra_worker.recommendations._data import OrgData

__all__ = ["embedding_optimization", "model_version_optimization", "task_aware_routing"]

# Seed 001's budget tier: tasks a small model does as well as a large one.
BUDGET_TASKS = {
    "greeting",
    "faq",
    "chitchat",
    "clarification",
    "formatting",
    "proofreading",
    "sentiment",
    "classification",
    "entity_extraction",
    "data_extraction",
    "code_completion",
}
# The budget model of each provider (names only; prices come from the pricing tables).
BUDGET_MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest", "google": "gemini-2.0-flash"}
# Snapshots with a newer, cheaper successor of at least the same quality.
SUCCESSOR = {
    "gpt-4": "gpt-4o",
    "gpt-4-0613": "gpt-4o",
    "gpt-4-turbo": "gpt-4o",
    "gpt-4-turbo-2024-04-09": "gpt-4o",
    "gpt-4-1106-preview": "gpt-4o",
    "gpt-4-0125-preview": "gpt-4o",
    "gpt-4-32k": "gpt-4o",
    "gpt-3.5-turbo-16k": "gpt-4o-mini",
    "claude-3-opus-20240229": "claude-sonnet-4-20250514",
    "claude-2.1": "claude-3-5-haiku-latest",
    "claude-instant-1.2": "claude-3-5-haiku-latest",
}


def task_aware_routing(conn, data: OrgData) -> list[Rec]:
    out = []
    for t in data.tasks:
        target = BUDGET_MODEL.get(t["provider"])
        if t["task_type"] not in BUDGET_TASKS or target is None or t["model"] == target:
            continue
        current = float(t["cost"] or 0) * data.monthly
        at_target = reprice(
            conn, t["provider"], target, t["input_tokens"], t["output_tokens"], t["cached_tokens"]
        )
        if at_target is None:
            continue
        projected = at_target * data.monthly
        if current - projected < MIN_MONTHLY_SAVINGS or projected > 0.8 * current:
            continue
        n = int(t["requests"])
        out.append(
            Rec(
                category="task_aware_routing",
                scope_type="feature",
                scope_value=t["feature"],
                key=f"{t['task_type']}:{t['model']}",
                title=f"Route {t['task_type']} calls of feature {t['feature']} from {t['model']} to {target}",
                description=f"{n:,} {t['task_type']} calls of feature `{t['feature']}` in {data.days:.0f} days "
                f"ran on {t['model']}; "
                f"{t['task_type']} is a budget-tier task that {target} handles, "
                f"at {projected / current:.0%} of the cost.",
                current=current,
                projected=projected,
                method="the same input, cached and output tokens repriced at the target model's listed "
                "price (pricing table)",
                confidence=0.8,
                risk="medium",
                effort="low",
                steps=[
                    f"Route feature {t['feature']} task {t['task_type']} to {target} (apply creates "
                    f"the rule).",
                    "Start on a traffic share and compare quality scores before going to 100%.",
                ],
                evidence={
                    "requests": n,
                    "cost_per_request": current / data.monthly / max(n, 1),
                    "task_type": t["task_type"],
                    "model": t["model"],
                    "provider": t["provider"],
                    "target_model": target,
                    "input_tokens": int(t["input_tokens"]),
                    "output_tokens": int(t["output_tokens"]),
                    "sample_request_ids": list(t["samples"] or []),
                },
                suggested_rule={
                    "conditions": {"feature": t["feature"], "task_type": t["task_type"], "model": t["model"]},
                    "action": {"type": "route_to_model", "provider": t["provider"], "model": target},
                },
            )
        )
    return out


def model_version_optimization(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        target = SUCCESSOR.get(model)
        if target is None:
            continue
        current = s["cost"] * data.monthly
        at_target = reprice(conn, provider, target, s["input_tokens"], s["output_tokens"], s["cached_tokens"])
        if at_target is None:
            continue
        projected = at_target * data.monthly
        if current - projected < MIN_MONTHLY_SAVINGS:
            continue
        n = int(s["requests"])
        out.append(
            Rec(
                category="model_version_optimization",
                scope_type="feature",
                scope_value=feature,
                key=f"{model}",
                title=f"Move feature {feature} from superseded {model} to {target}",
                description=f"{model} is superseded by {target}, which costs {projected / current:.0%} as much "
                f"for the same tokens.",
                current=current,
                projected=projected,
                method="the same tokens repriced at the successor's listed price (pricing table)",
                confidence=0.85,
                risk="low",
                effort="low",
                steps=[
                    f"Change the model of feature {feature} from {model} to {target}.",
                    "Run the feature's evaluations.",
                ],
                evidence={
                    "requests": n,
                    "cost_per_request": s["cost"] / max(n, 1),
                    "model": model,
                    "provider": provider,
                    "target_model": target,
                    "series": s["series"],
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {"type": "route_to_model", "provider": provider, "model": target},
                },
            )
        )
    return out


# Embedding models with a cheaper successor of comparable retrieval quality (names; prices from the table).
EMBEDDING_SUCCESSOR = {
    "text-embedding-ada-002": "text-embedding-3-small",
    "text-embedding-3-large": "text-embedding-3-small",
}


def embedding_optimization(conn, data: OrgData) -> list[Rec]:
    out = []
    for (feature, provider, model), s in data.scopes.items():
        target = EMBEDDING_SUCCESSOR.get(model)
        if target is None:
            continue
        current = s["cost"] * data.monthly
        at_target = reprice(conn, provider, target, s["input_tokens"], s["output_tokens"], s["cached_tokens"])
        if at_target is None:
            continue
        projected = at_target * data.monthly
        if current - projected < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="embedding_optimization",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Embed feature {feature} with {target} instead of {model}",
                description=f"{int(s['requests']):,} embedding calls on {model}; "
                f"{target} costs {projected / current:.0%} "
                "as much per token. Re-embed the corpus once when switching (vectors are not comparable).",
                current=current,
                projected=projected,
                method="the same input tokens repriced at the target model's listed price (pricing table)",
                confidence=0.75,
                risk="medium",
                effort="medium",
                steps=[
                    f"Re-embed the stored corpus with {target} (or at reduced dimensions).",
                    f"Switch feature {feature}'s queries to {target} at the same time.",
                    "Compare retrieval recall on a labelled sample before and after.",
                ],
                evidence={
                    "requests": int(s["requests"]),
                    "cost_per_request": s["cost"] / max(s["requests"], 1),
                    "model": model,
                    "provider": provider,
                    "target_model": target,
                    "series": s["series"],
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {"type": "route_to_model", "provider": provider, "model": target},
                },
            )
        )
    return out
