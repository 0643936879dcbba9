"""Input tokens: context window efficiency. Calls that share a system prompt (same system_prompt_hash)
resend the same prefix every time; with the provider's prompt caching those prefix tokens are billed at
the cache-read price. The shared prefix is at most the shortest call of the group, which is used as the
(conservative) prefix length; prices come from the pricing table."""

from __future__ import annotations

from tokentra_worker.recommendations._common import MIN_MONTHLY_SAVINGS, Rec
from tokentra_worker.recommendations._data import OrgData

__all__ = ["context_window_efficiency", "io_ratio_optimization", "prompt_compression"]

MIN_PREFIX = 1024  # below this providers do not cache a prefix
MAX_CACHED_SHARE = 0.1


def _cost(conn, provider: str, model: str, inp: int, out: int, cached: int) -> float | None:
    row = conn.execute(
        "select c.cost_usd::float8 as cost from private.usage_cost(%s, %s, now(), %s, %s, %s, 0, 0) c",
        (provider, model, int(inp), int(out), int(cached)),
    ).fetchone()
    return None if row is None or row["cost"] is None else float(row["cost"])


def context_window_efficiency(conn, data: OrgData) -> list[Rec]:
    groups: dict[tuple[str, str, str], dict] = {}
    for p in data.prefixes:
        if (
            p["requests"] < 2
            or p["min_input"] < MIN_PREFIX
            or p["cached_tokens"] > MAX_CACHED_SHARE * p["input_tokens"]
        ):
            continue
        g = groups.setdefault(
            (p["feature"], p["provider"], p["model"]),
            {"input": 0, "output": 0, "cached": 0, "cacheable": 0, "requests": 0, "prompts": 0},
        )
        g["input"] += p["input_tokens"]
        g["output"] += p["output_tokens"]
        g["cached"] += p["cached_tokens"]
        g["cacheable"] += (p["requests"] - 1) * p["min_input"]
        g["requests"] += p["requests"]
        g["prompts"] += 1
    out = []
    for (feature, provider, model), g in groups.items():
        now_cost = _cost(conn, provider, model, g["input"], g["output"], g["cached"])
        cached_cost = _cost(
            conn, provider, model, g["input"], g["output"], min(g["cached"] + g["cacheable"], g["input"])
        )
        if now_cost is None or cached_cost is None:
            continue
        current, projected = now_cost * data.monthly, cached_cost * data.monthly
        if current - projected < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="context_window_efficiency",
                scope_type="feature",
                scope_value=feature,
                key=model,
                title=f"Cache the repeated system prompts of feature {feature} on {model}",
                description=f"{g['requests']:,} calls resend {g['prompts']} system prompts of at least "
                f"{MIN_PREFIX} tokens "
                f"with under {MAX_CACHED_SHARE:.0%} of input served from the prompt cache.",
                current=current,
                projected=projected,
                method="the shared prefix (the shortest call per system prompt) of every call but the "
                "first billed at "
                "the cache-read price (pricing table)",
                confidence=0.7,
                risk="low",
                effort="low",
                steps=[
                    "Put the system prompt and other static context first, the variable part last.",
                    "Enable prompt caching (Anthropic: cache_control; OpenAI: automatic above 1,024 tokens).",
                ],
                evidence={
                    "requests": g["requests"],
                    "cost_per_request": current / data.monthly / max(g["requests"], 1),
                    "model": model,
                    "provider": provider,
                    "system_prompts": g["prompts"],
                    "cacheable_tokens": g["cacheable"],
                    "series": data.scopes.get((feature, provider, model), {}).get("series", {}),
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": feature, "model": model},
                    "action": {"type": "enable_prompt_cache"},
                },
            )
        )
    return out


# io_ratio_optimization: long answers to short prompts, with a heavy tail of output.
IO_RATIO = 1.0
EXCESS_SHARE = 0.3
# prompt_compression: long prompts that are not cached (compression tools keep ~70% of the tokens).
LONG_PROMPT = 8000
COMPRESSION_KEEPS = 0.7


def _output_cost(conn, provider: str, model: str, tokens: int) -> float | None:
    return _cost(conn, provider, model, 0, tokens, 0)


def io_ratio_optimization(conn, data: OrgData) -> list[Rec]:
    out = []
    for s in data.shapes:
        if s["model"].startswith("text-embedding") or not s["input_tokens"]:
            continue
        ratio = s["output_tokens"] / s["input_tokens"]
        if ratio < IO_RATIO or s["excess_output"] < EXCESS_SHARE * s["output_tokens"]:
            continue
        wasted = _output_cost(conn, s["provider"], s["model"], s["excess_output"])
        scope = data.scopes.get((s["feature"], s["provider"], s["model"]), {})
        if wasted is None:
            continue
        current = float(scope.get("cost", 0)) * data.monthly
        wasted *= data.monthly
        if wasted < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="io_ratio_optimization",
                scope_type="feature",
                scope_value=s["feature"],
                key=s["model"],
                title=f"Cap the output of feature {s['feature']} on {s['model']} near its median length",
                description=f"Calls of feature {s['feature']} return {ratio:.1f} output tokens per input token; "
                f"the longest "
                f"half carry {s['excess_output']:,} tokens beyond the median answer "
                f"({s['p50_output']} tokens).",
                current=current,
                projected=current - wasted,
                method="output tokens beyond the feature's median answer length, at the output price "
                "(pricing table)",
                confidence=0.5,
                risk="medium",
                effort="low",
                steps=[
                    f"Set max_tokens near {int(s['p50_output'] * 1.2)} for this feature.",
                    "Ask for concise answers in the prompt; check answer quality on a sample.",
                ],
                evidence={
                    "requests": int(s["requests"]),
                    "cost_per_request": current / data.monthly / max(s["requests"], 1),
                    "model": s["model"],
                    "provider": s["provider"],
                    "io_ratio": round(ratio, 3),
                    "median_output_tokens": int(s["p50_output"]),
                    "excess_output_tokens": int(s["excess_output"]),
                    "series": scope.get("series", {}),
                    "sample_request_ids": [],
                },
                suggested_rule={
                    "conditions": {"feature": s["feature"], "model": s["model"]},
                    "action": {"type": "set_max_tokens", "max_tokens": int(s["p50_output"] * 1.2)},
                },
            )
        )
    return out


def prompt_compression(conn, data: OrgData) -> list[Rec]:
    out = []
    for s in data.shapes:
        if s["model"].startswith("text-embedding") or s["p50_input"] < LONG_PROMPT:
            continue
        if s["cached_tokens"] > MAX_CACHED_SHARE * s["input_tokens"]:
            continue
        uncached = s["input_tokens"] - s["cached_tokens"]
        saved = _cost(conn, s["provider"], s["model"], int(uncached * (1 - COMPRESSION_KEEPS)), 0, 0)
        scope = data.scopes.get((s["feature"], s["provider"], s["model"]), {})
        if saved is None:
            continue
        current = float(scope.get("cost", 0)) * data.monthly
        saved *= data.monthly
        if saved < MIN_MONTHLY_SAVINGS:
            continue
        out.append(
            Rec(
                category="prompt_compression",
                scope_type="feature",
                scope_value=s["feature"],
                key=s["model"],
                title=f"Compress the long prompts of feature {s['feature']} on {s['model']}",
                description=f"The median call of feature {s['feature']} sends {s['p50_input']:,} input tokens, "
                "uncached.",
                current=current,
                projected=current - saved,
                method=f"{1 - COMPRESSION_KEEPS:.0%} of the uncached input tokens removed (typical of prompt "
                "compression), at the input price (pricing table)",
                confidence=0.5,
                risk="medium",
                effort="medium",
                steps=[
                    "Trim retrieved context to the passages that score highest; drop boilerplate.",
                    "Try a prompt compressor (e.g. LLMLingua) on a sample and compare answers.",
                ],
                evidence={
                    "requests": int(s["requests"]),
                    "cost_per_request": current / data.monthly / max(s["requests"], 1),
                    "model": s["model"],
                    "provider": s["provider"],
                    "median_input_tokens": int(s["p50_input"]),
                    "series": scope.get("series", {}),
                    "sample_request_ids": [],
                },
            )
        )
    return out
