"""Generated months of provider billing whose truth is known, and the sums the sync must reproduce."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tokentra_dev.testing.provider_admin_servers import (
    AdminLedger,
    AnthropicCostRecord,
    AnthropicUsageRecord,
    OpenAICostRecord,
    OpenAIUsageRecord,
)

OPENAI_MODELS = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "o3-mini-2025-01-31"]
EMBEDDING_MODELS = ["text-embedding-3-small", "text-embedding-3-large"]
ANTHROPIC_MODELS = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"]


def _ts(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))


def month(seed: int, now: datetime, days: int = 31, scale: int = 1) -> AdminLedger:
    """A ledger over the `days` whole UTC days before today and today up to a few minutes before now, with
    a random number of models, projects, keys, tiers and records (all shapes vary with the seed)."""
    rng = random.Random(seed)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    end = now - timedelta(minutes=3)
    projects = [f"proj_{rng.getrandbits(40):010x}" for _ in range(rng.randint(1, 4))] + [None]
    keys = [f"key_{rng.getrandbits(40):010x}" for _ in range(rng.randint(1, 5))]
    workspaces = [f"wrkspc_{rng.getrandbits(40):010x}" for _ in range(rng.randint(1, 3))] + [None]
    ledger = AdminLedger()
    for _ in range(rng.randint(150, 400) * scale):
        inp = rng.randint(1, 60_000)
        cached = rng.choice([0, 0, rng.randint(0, inp)])
        audio_in = rng.choice([0, 0, 0, rng.randint(0, inp - cached)])
        out = rng.randint(0, 8_000)
        ledger.openai_usage.append(OpenAIUsageRecord(
            _ts(rng, start, end), rng.choice(OPENAI_MODELS), rng.choice(projects), rng.choice(keys),
            batch=rng.random() < 0.2, service_tier=rng.choice(["default", "default", "flex", "priority"]),
            input_tokens=inp, input_cached_tokens=cached, output_tokens=out, input_audio_tokens=audio_in,
            output_audio_tokens=rng.choice([0, 0, rng.randint(0, out)]), num_model_requests=rng.randint(1, 40)))
    for _ in range(rng.randint(20, 80) * scale):
        ledger.openai_usage.append(OpenAIUsageRecord(
            _ts(rng, start, end), rng.choice(EMBEDDING_MODELS), rng.choice(projects), rng.choice(keys),
            input_tokens=rng.randint(1, 200_000), num_model_requests=rng.randint(1, 50), kind="embeddings"))
    for _ in range(rng.randint(100, 300) * scale):
        kind = rng.choice(["input", "output", "cached input", "batch input"])
        line = rng.choice([f"{rng.choice(OPENAI_MODELS)}, {kind}"] * 6 + ["web search tool calls", "Image models"])
        ledger.openai_costs.append(OpenAICostRecord(
            _ts(rng, start, end), line, rng.choice(projects),
            Decimal(rng.randint(1, 5_000_000_000)) / Decimal(10) ** rng.randint(6, 11)))
    for _ in range(rng.randint(150, 400) * scale):
        ledger.anthropic_usage.append(AnthropicUsageRecord(
            _ts(rng, start, end), rng.choice(ANTHROPIC_MODELS), rng.choice(keys), rng.choice(workspaces),
            service_tier=rng.choice(["standard", "standard", "batch", "priority"]),
            context_window=rng.choice(["0-200k", "0-200k", "200k-1M"]),
            uncached_input_tokens=rng.randint(0, 50_000),
            cache_read_input_tokens=rng.choice([0, rng.randint(0, 90_000)]),
            cache_creation_5m=rng.choice([0, rng.randint(0, 20_000)]),
            cache_creation_1h=rng.choice([0, 0, rng.randint(0, 20_000)]), output_tokens=rng.randint(0, 6_000),
            web_search_requests=rng.choice([0, 0, 0, rng.randint(1, 9)])))
    token_types = ["uncached_input_tokens", "output_tokens", "cache_read_input_tokens",
                   "cache_creation.ephemeral_5m_input_tokens", "cache_creation.ephemeral_1h_input_tokens"]
    for _ in range(rng.randint(100, 300) * scale):
        ts = _ts(rng, start, end)
        cents = Decimal(rng.randint(1, 900_000_000)) / Decimal(10) ** rng.randint(2, 8)
        if rng.random() < 0.15:
            ledger.anthropic_costs.append(AnthropicCostRecord(
                ts, rng.choice(workspaces), "Web Search", None, "web_search", None, None, None, cents))
            continue
        model = rng.choice(ANTHROPIC_MODELS)
        token_type = rng.choice(token_types)
        tier = rng.choice(["standard", "batch"])
        window = rng.choice(["0-200k", "200k-1M"])
        ledger.anthropic_costs.append(AnthropicCostRecord(
            ts, rng.choice(workspaces), f"{model} {token_type} {tier} {window}", model, "tokens", token_type, tier,
            window, cents))
    return ledger


def _day(ts: datetime) -> str:
    return ts.astimezone(UTC).date().isoformat()


def openai_usage_truth(ledger: AdminLedger) -> dict[tuple[Any, ...], dict[str, int]]:
    """(day, model, project, key, tier, batch) -> categories, as the daily view must show them."""
    out: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in ledger.openai_usage:
        embeddings = r.kind == "embeddings"
        key = (_day(r.ts), r.model, r.project_id, r.api_key_id, None if embeddings else r.service_tier,
               None if embeddings else r.batch)
        t = out[key]
        t["input_tokens"] += r.input_tokens - r.input_cached_tokens
        t["cached_input_tokens"] += r.input_cached_tokens
        t["output_tokens"] += r.output_tokens
        t["input_audio_tokens"] += r.input_audio_tokens
        t["output_audio_tokens"] += r.output_audio_tokens
        t["requests"] += r.num_model_requests
    return {k: dict(v) for k, v in out.items()}


def anthropic_usage_truth(ledger: AdminLedger) -> dict[tuple[Any, ...], dict[str, int]]:
    """(day, model, workspace, key, tier, context window) -> categories."""
    out: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in ledger.anthropic_usage:
        t = out[(_day(r.ts), r.model, r.workspace_id, r.api_key_id, r.service_tier, r.context_window)]
        t["input_tokens"] += r.uncached_input_tokens
        t["cached_input_tokens"] += r.cache_read_input_tokens
        t["cache_write_tokens"] += r.cache_creation_5m + r.cache_creation_1h
        t["cache_write_5m_tokens"] += r.cache_creation_5m
        t["cache_write_1h_tokens"] += r.cache_creation_1h
        t["output_tokens"] += r.output_tokens
        t["web_search_requests"] += r.web_search_requests
    return {k: dict(v) for k, v in out.items()}


def cost_truth(ledger: AdminLedger) -> dict[tuple[Any, ...], Decimal]:
    """(provider, day, line item, project or workspace) -> USD."""
    out: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for c in ledger.openai_costs:
        out[("openai", _day(c.ts), c.line_item, c.project_id)] += c.amount_usd
    for a in ledger.anthropic_costs:
        out[("anthropic", _day(a.ts), a.description, a.workspace_id)] += a.amount_cents / 100
    return dict(out)
