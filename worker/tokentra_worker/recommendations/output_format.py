"""Output format: answers that carry JSON wrapped in tokens nobody reads. The SDK measures, on the
customer's machine and without sending any text, the share of an answer's characters outside the compact
JSON it contains (indentation, code fences, "Here is the JSON:" prose). A feature whose answers carry a
large such share pays output tokens that structured output (a strict JSON schema) would not produce."""

from __future__ import annotations

from collections import defaultdict

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec, reprice
from tokentra_worker.recommendations._data import OrgData

__all__ = ["output_format_optimization"]

MIN_MEASURED = 50  # measured answers a feature needs
MIN_OVERHEAD = 0.1  # below this share of output tokens, formatting is not worth a change

_STEPS = {
    "text": "Ask for structured output (OpenAI: response_format json_schema with strict=true; Anthropic: a "
    "tool with an input schema) instead of asking for JSON in the prompt: no prose, no code fences.",
    "json_object": "Move from json_object to json_schema with strict=true, so the model emits only the "
    "fields of the schema, compactly.",
    "json_schema": "Drop pretty-printing and free-text fields from the schema; ask for minified JSON.",
}


def output_format_optimization(conn, data: OrgData) -> list[Rec]:
    groups: dict[tuple[str, str, str], dict] = {}
    for f in data.formats:
        g = groups.setdefault(
            (f["feature"], f["provider"], f["model"]),
            {"measured": 0, "output": 0, "avoidable": 0.0, "formats": defaultdict(int), "samples": []},
        )
        g["measured"] += f["measured"]
        g["output"] += f["output_tokens"]
        g["avoidable"] += f["avoidable_tokens"]
        g["formats"][f["response_format"]] += int(f["measured"])
        g["samples"] += list(f["samples"] or [])
    out = []
    for (feature, provider, model), g in groups.items():
        if g["measured"] < MIN_MEASURED or not g["output"] or g["avoidable"] < MIN_OVERHEAD * g["output"]:
            continue
        wasted = reprice(conn, provider, model, 0, round(g["avoidable"]), 0)
        if wasted is None:
            continue
        scope = data.scopes.get((feature, provider, model), {})
        current = float(scope.get("cost", 0)) * data.monthly
        wasted *= data.monthly
        if wasted < MIN_MONTHLY_SAVINGS or wasted >= current:
            continue
        share = g["avoidable"] / g["output"]
        asked = max(g["formats"], key=g["formats"].get)
        out.append(
            Rec(
                category="output_format_optimization",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Ask feature {feature} on {model} for compact structured output",
                description=f"{share:.0%} of the output tokens of feature `{feature}` on {model} lie outside "
                "the JSON its "
                f"answers carry (whitespace, code fences, prose around it), over {g['measured']:,} measured "
                f"answers; most calls asked for `{asked}` output.",
                current=current,
                projected=current - wasted,
                method="output tokens outside the compact JSON of each measured answer (the SDK's character share "
                "times the answer's visible output tokens), at the model's output price (pricing table); "
                "answers the SDK could not measure (most streams) are left out",
                confidence=0.6,
                risk="low",
                effort="low",
                steps=[
                    _STEPS.get(asked, _STEPS["text"]),
                    "Check on a sample that the parsed results are unchanged.",
                ],
                evidence={
                    "requests": int(g["measured"]),
                    "cost_per_request": current / data.monthly / max(scope.get("requests", 0), 1),
                    "model": model,
                    "provider": provider,
                    "overhead_share": round(share, 4),
                    "avoidable_output_tokens": round(g["avoidable"]),
                    "output_tokens": int(g["output"]),
                    "requested_formats": dict(g["formats"]),
                    "series": scope.get("series", {}),
                    "sample_request_ids": g["samples"][:5],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {"type": "set_response_format", "response_format": "json_schema", "strict": True},
                },
            )
        )
    return out
