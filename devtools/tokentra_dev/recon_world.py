"""A generated month whose reconciliation truth is known: the calls we track (ingested through the real
ingest endpoint) and what the providers bill for them (an AdminLedger for the local admin-report servers),
with gaps planted between the two, each of one cause, at a random model, day and size.

Without a planted gap both sides agree to the cent: the providers bill every call at our own catalogue
price (read from the database, `world_prices`). Each planted gap changes one side the way the real
failure does and records its truth (cause, provider, canonical model, day, USD):

    untracked_traffic    calls billed under a key (or workspace) no tracked call goes through
    unpriced_model       a model our price table does not know, tracked unpriced, billed at its own price
    price_change         the provider's price of a model changes on a day; our table keeps the old one
    cache_accounting     the SDK reports no cache reads (OpenAI) or no cache writes (Anthropic) for some calls
    batch_flex_discount  batch calls tracked without their tier (priced at the standard rate)
    long_context         calls above 200k input tokens to a model whose long-context premium we lack
    tool_fees            web searches billed per call
    rounding             cost lines billed rounded to the cent
    timing               calls just before midnight that the provider buckets on the next day (never on a
                         day the same model has untracked traffic: the two would be indistinguishable)
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx

from tokentra_core.db import connect
from tokentra_dev.testing.provider_admin_servers import (
    AdminLedger,
    AnthropicCostRecord,
    AnthropicUsageRecord,
    OpenAICostRecord,
    OpenAIUsageRecord,
)

__all__ = ["CAUSES", "Model", "Planted", "TrackedCall", "World", "bill_rows", "generate", "ingest", "world_prices"]

CAUSES = ("untracked_traffic", "unpriced_model", "price_change", "cache_accounting", "batch_flex_discount",
          "long_context", "tool_fees", "rounding", "timing")
CATEGORIES = ("input", "cached", "cache_write", "output")
WEB_SEARCH_USD = Decimal("0.01")  # both providers: $10 per thousand searches
LONG = 200_000


@dataclass(frozen=True)
class Model:
    provider: str
    name: str  # as sent and as billed
    canonical: str
    batch: bool = False  # some of its calls go through the Batch API
    cache_writes: bool = False


# The models a world draws from; every one our catalogue prices, but the one planted as unpriced.
OPENAI = [Model("openai", "gpt-4o-2024-08-06", "gpt-4o", batch=True), Model("openai", "gpt-4o-mini-2024-07-18",
                                                                          "gpt-4o-mini", batch=True),
          Model("openai", "gpt-4.1-2025-04-14", "gpt-4.1")]
ANTHROPIC = [Model("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", cache_writes=True),
             Model("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5", cache_writes=True)]
# Prices the catalogue lacks: a preview model, and Sonnet 4's long-context window (1M beta).
UNPRICED = Model("openai", "gpt-7-preview", "gpt-7-preview")
UNPRICED_USD = {"input": Decimal("4.2") / 10**6, "cached": Decimal("2.1") / 10**6, "cache_write": Decimal(0),
                "output": Decimal("16.8") / 10**6}
LONG_MODEL = Model("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0", cache_writes=True)
LONG_FACTOR = {"input": Decimal(2), "cached": Decimal(2), "cache_write": Decimal(2), "output": Decimal("1.5")}

Prices = dict[tuple[str, str, bool], dict[str, Decimal]]  # (canonical, tier, long) -> USD per token


@dataclass
class TrackedCall:
    """One call as the SDK reports it (ingest's event)."""

    request_id: str
    provider: str
    model: str
    at: datetime
    input_tokens: int  # every input token, cache included
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    service_tier: str | None

    def event(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "provider": self.provider, "model": self.model,
                "timestamp": self.at.isoformat(), "input_tokens": self.input_tokens,
                "cached_tokens": self.cached_tokens, "cache_write_tokens": self.cache_write_tokens,
                "output_tokens": self.output_tokens, "service_tier": self.service_tier,
                "metadata": {"feature": "recon-world"}}


@dataclass(frozen=True)
class Planted:
    cause: str
    provider: str
    canonical_model: str | None
    day: date
    amount_usd: Decimal  # billed minus tracked this gap makes
    what: str = ""


@dataclass
class World:
    seed: int
    first_day: date
    last_day: date
    calls: list[TrackedCall] = field(default_factory=list)
    ledger: AdminLedger = field(default_factory=AdminLedger)
    planted: list[Planted] = field(default_factory=list)
    billed_usd: Decimal = Decimal(0)

    def planted_by(self) -> dict[tuple[str, str, str | None, date], Decimal]:
        """(cause, provider, canonical model, day) -> USD, summed."""
        out: dict[tuple[str, str, str | None, date], Decimal] = defaultdict(Decimal)
        for p in self.planted:
            out[(p.cause, p.provider, p.canonical_model, p.day)] += p.amount_usd
        return dict(out)


def world_prices(dsn: str, on: date, models: Iterable[Model] = ()) -> Prices:
    """Our catalogue's USD per token for every model a world uses (and `models`), as the reconciliation
    reads it."""
    prices: Prices = {}
    with connect(dsn) as conn:
        for m in [*OPENAI, *ANTHROPIC, LONG_MODEL, *models]:
            for tier in ("standard", "batch"):
                for long in (False, True):
                    row = conn.execute(
                        "select * from private.reconciliation_our_prices(%s, %s, %s, %s, %s, %s)",
                        (uuid.uuid4(), m.provider, m.canonical, on, tier, long)).fetchone()
                    if row is not None:
                        prices[(m.canonical, tier, long)] = {c: Decimal(row[c]) for c in CATEGORIES}
    return prices


# ---------------------------------------------------------------- the billed side
@dataclass
class _Call:
    model: Model
    at: datetime  # when the provider bills it
    key: str
    project: str
    tier: str  # standard | batch
    input: int  # uncached
    cached: int
    written: int
    output: int
    searches: int = 0


class _Biller:
    """Accumulates billed calls into usage atoms and per-day cost lines at the world's prices."""

    def __init__(self, prices: Prices) -> None:
        self.prices = prices
        self.usage: list[_Call] = []
        # (provider, day, model name, category, tier, ctx, project) -> USD
        self.lines: dict[tuple[str, date, str, str, str, str, str], Decimal] = defaultdict(Decimal)
        self.searches: dict[tuple[str, date, str], int] = defaultdict(int)
        self.factor: dict[tuple[str, date], Decimal] = {}  # price changes: (canonical, from day) -> factor
        self.models: dict[str, Model] = {}

    def unit(self, m: Model, tier: str, long: bool, day: date) -> dict[str, Decimal]:
        if m is UNPRICED:
            base = UNPRICED_USD
        elif m is LONG_MODEL:
            base = self.prices[(m.canonical, tier, False)]
            if long:
                base = {c: base[c] * LONG_FACTOR[c] for c in CATEGORIES}
        else:
            base = self.prices[(m.canonical, tier, long)]
        factor = Decimal(1)
        for (canonical, since), f in self.factor.items():
            if canonical == m.canonical and day >= since:
                factor = f
        return {c: base[c] * factor for c in CATEGORIES}

    def cost(self, c: _Call) -> Decimal:
        long = c.input + c.cached + c.written > LONG and c.model.provider == "anthropic"
        u = self.unit(c.model, c.tier, long, c.at.date())
        return (c.input * u["input"] + c.cached * u["cached"] + c.written * u["cache_write"]
                + c.output * u["output"] + c.searches * WEB_SEARCH_USD)

    def bill(self, c: _Call) -> None:
        self.usage.append(c)
        self.models[c.model.name] = c.model
        day = c.at.date()
        long = c.input + c.cached + c.written > LONG and c.model.provider == "anthropic"
        u = self.unit(c.model, c.tier, long, day)
        ctx = "long" if long else "short"
        for cat, n in (("input", c.input), ("cached", c.cached), ("cache_write", c.written), ("output", c.output)):
            if n:
                self.lines[(c.model.provider, day, c.model.name, cat, c.tier, ctx, c.project)] += n * u[cat]
        if c.searches:
            self.searches[(c.model.provider, day, c.project)] += c.searches

    def ledger(self, rounded: set[tuple[str, date, str]], planted: list[Planted]) -> AdminLedger:
        led = AdminLedger()
        for c in self.usage:
            if c.model.provider == "openai":
                if "embedding" in c.model.name:
                    led.openai_usage.append(OpenAIUsageRecord(c.at, c.model.name, c.project, c.key,
                                                              input_tokens=c.input, kind="embeddings"))
                    continue
                led.openai_usage.append(OpenAIUsageRecord(
                    c.at, c.model.name, c.project, c.key, batch=c.tier == "batch", service_tier="default",
                    input_tokens=c.input + c.cached, input_cached_tokens=c.cached, output_tokens=c.output))
            else:
                total = c.input + c.cached + c.written
                led.anthropic_usage.append(AnthropicUsageRecord(
                    c.at, c.model.name, c.key, c.project, service_tier=c.tier,
                    context_window="200k-1M" if total > LONG else "0-200k", uncached_input_tokens=c.input,
                    cache_read_input_tokens=c.cached, cache_creation_5m=c.written, output_tokens=c.output,
                    web_search_requests=c.searches))
        kinds = {"input": "input", "cached": "cached input", "output": "output"}
        anthropic_types = {"input": "uncached_input_tokens", "cached": "cache_read_input_tokens",
                           "cache_write": "cache_creation.ephemeral_5m_input_tokens", "output": "output_tokens"}
        for (provider, day, name, cat, tier, ctx, project), usd in sorted(self.lines.items(), key=str):
            at = datetime.combine(day, time(6), UTC)
            canonical = self.models[name].canonical
            if (provider, day, canonical) in rounded:
                billed = usd.quantize(Decimal("0.01"), ROUND_HALF_EVEN)
                if billed != usd:
                    planted.append(Planted("rounding", provider, canonical, day, billed - usd, "line rounded"))
                usd = billed
            if provider == "openai":
                kind = kinds[cat] + (" (batch)" if tier == "batch" else "")
                led.openai_costs.append(OpenAICostRecord(at, f"{name}, {kind}", project, usd))
            else:
                led.anthropic_costs.append(AnthropicCostRecord(
                    at, project, f"{name} {anthropic_types[cat]}", name, "tokens", anthropic_types[cat], tier,
                    "200k-1M" if ctx == "long" else "0-200k", usd * 100))
        for (provider, day, project), n in sorted(self.searches.items(), key=str):
            at = datetime.combine(day, time(6), UTC)
            usd = n * WEB_SEARCH_USD
            if provider == "openai":
                led.openai_costs.append(OpenAICostRecord(at, "web search tool calls", project, usd))
            else:
                led.anthropic_costs.append(AnthropicCostRecord(
                    at, project, "Web Search", None, "web_search", None, None, None, usd * 100))
        return led


# ---------------------------------------------------------------- the month
def _tokens(rng: random.Random, m: Model, long: bool = False) -> tuple[int, int, int, int]:
    """(uncached input, cached, cache writes, output) of one call."""
    total = rng.randint(201_000, 260_000) if long else int(rng.lognormvariate(8.0, 0.9)) + 50
    cached = int(total * rng.choice([0, 0, rng.uniform(0.2, 0.8)]))
    written = int((total - cached) * rng.uniform(0.1, 0.5)) if m.cache_writes and rng.random() < 0.3 else 0
    return total - cached - written, cached, written, rng.randint(20, 1500)


def generate(  # noqa: C901 - one pass over the month, each planted gap a few lines of its own
    seed: int, now: datetime, prices: Prices, days: int | None = None, scale: float = 1.0
) -> World:
    """A world over whole UTC days before `now`'s day: random models, keys, sizes and planted gaps."""
    rng = random.Random(seed)
    days = days or rng.randint(10, 24)
    last = now.astimezone(UTC).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    world = World(seed, first, last)
    biller = _Biller(prices)
    models = rng.sample(OPENAI, rng.randint(2, 3)) + rng.sample(ANTHROPIC, rng.randint(1, 2))
    keys = {m: f"key_{rng.getrandbits(32):08x}" for m in models}
    projects = {m: rng.choice([f"proj_{rng.getrandbits(24):06x}" for _ in range(3)]) for m in models}
    daily = {m: max(4, int(rng.uniform(8, 30) * scale)) for m in models}
    all_days = [first + timedelta(days=i) for i in range(days)]

    def cell_days(k: int) -> list[date]:
        return sorted(rng.sample(all_days, min(k, len(all_days))))

    # which gaps this world has, where
    untracked = {(rng.choice(models), d) for d in cell_days(rng.randint(1, 3))}
    price_model = rng.choice(models)
    price_from = rng.choice(all_days[1:])
    price_factor = Decimal(rng.choice(["1.2", "1.25", "0.8", "1.5"]))
    biller.factor[(price_model.canonical, price_from)] = price_factor
    cache_model = rng.choice(models)
    cache_days = set(cell_days(rng.randint(2, 5)))
    untiered_days = set(cell_days(rng.randint(2, 4)))
    search_days = set(cell_days(rng.randint(1, 4)))
    rounded_days = set(cell_days(rng.randint(1, 3)))
    timing_model = rng.choice(models)
    # Not on a day the same model has untracked traffic: calls billed a day late (-T that day, +T the next)
    # and untracked traffic (+U) on the same model and day net out in that day's volume, and the per-day
    # volumes then fit timing of T - U plus untracked traffic on the next day just as exactly. Only which
    # key the provider billed tells them apart, and our calls carry no provider key to compare it with.
    timing_days = set(cell_days(rng.randint(1, 3))) - {last} - {d for m, d in untracked if m is timing_model}
    long_days = set(cell_days(rng.randint(1, 2)))
    unpriced_days = set(cell_days(rng.randint(2, 6)))

    seq = 0
    own_usd: dict[tuple[Model, date], Decimal] = defaultdict(Decimal)  # billed under the model's own key

    def track(c: _Call, at: datetime | None = None, *, cached: int | None = None, written: int | None = None,
              tier: str | None = "same") -> None:
        nonlocal seq
        seq += 1
        cached_ = c.cached if cached is None else cached
        written_ = c.written if written is None else written
        world.calls.append(TrackedCall(
            f"recon-{seed}-{seq}", c.model.provider, c.model.name, at or c.at, c.input + c.cached + c.written,
            cached_, written_, c.output, (None if c.tier == "standard" else c.tier) if tier == "same" else tier))

    def call(m: Model, day: date, key: str, project: str, *, long: bool = False, tier: str = "standard",
             at: datetime | None = None) -> _Call:
        inp, cached, written, out = _tokens(rng, m, long)
        at = at or datetime.combine(day, time(), UTC) + timedelta(seconds=rng.randrange(60, 86_000))
        return _Call(m, at, key, project, tier, inp, cached, written, out)

    for day in all_days:
        for m in models:
            for _ in range(daily[m]):
                tier = "batch" if m.batch and rng.random() < 0.25 else "standard"
                c = call(m, day, keys[m], projects[m], tier=tier)
                if m.provider == "anthropic" and day in search_days and rng.random() < 0.3:
                    c.searches = rng.randint(1, 4)
                    world.planted.append(Planted("tool_fees", m.provider, None, day,
                                                 c.searches * WEB_SEARCH_USD, "web searches"))
                biller.bill(c)
                own_usd[(m, day)] += biller.cost(c)
                if m is cache_model and day in cache_days and (c.cached or c.written) and rng.random() < 0.6:
                    # the integration drops the cache figure: the tokens are tracked as plain input
                    u = biller.unit(m, c.tier, False, day)
                    if m.provider == "openai":
                        track(c, cached=0)
                        gap = c.cached * (u["cached"] - u["input"])
                    else:
                        track(c, written=0)
                        gap = c.written * (u["cache_write"] - u["input"])
                    world.planted.append(Planted("cache_accounting", m.provider, m.canonical, day, gap))
                elif tier == "batch" and day in untiered_days:
                    track(c, tier=None)
                    std, bat = biller.unit(m, "standard", False, day), biller.unit(m, "batch", False, day)
                    gap = sum((n * (bat[k] - std[k]) for k, n in
                               (("input", c.input), ("cached", c.cached), ("output", c.output))), Decimal(0))
                    world.planted.append(Planted("batch_flex_discount", m.provider, m.canonical, day, gap))
                else:
                    track(c)
                if day >= price_from and m is price_model:
                    old = prices[(m.canonical, c.tier, False)]
                    new = biller.unit(m, c.tier, False, day)
                    gap = sum((n * (new[k] - old[k]) for k, n in (
                        ("input", c.input), ("cached", c.cached), ("cache_write", c.written), ("output", c.output))),
                        Decimal(0))
                    world.planted.append(Planted("price_change", m.provider, m.canonical, day, gap))
            if (m, day) in untracked:
                shadow_key, shadow_project = f"key_{rng.getrandbits(32):08x}", f"proj_{rng.getrandbits(24):06x}"
                shadow_usd, n = Decimal(0), max(2, int(daily[m] * rng.uniform(0.2, 0.8)))
                # The untracked traffic is named by the key whose billed amount makes it up: a shadow key
                # billing within a quarter of what the model's own key bills that day could be named either
                # way by amount alone, so it gets calls until the two are told apart (the other way, fewer
                # calls, could leave none).
                own = own_usd[(m, day)]
                while n > 0 or abs(shadow_usd - own) < Decimal("0.25") * max(shadow_usd, own):
                    n -= 1
                    c = call(m, day, shadow_key, shadow_project)
                    biller.bill(c)
                    shadow_usd += biller.cost(c)
                    world.planted.append(Planted("untracked_traffic", m.provider, m.canonical, day, biller.cost(c),
                                                 shadow_key))
            if m is timing_model and day in timing_days:
                # started just before midnight, billed by the provider on the next day
                for _ in range(rng.randint(2, 6)):
                    at = datetime.combine(day, time(23, 59), UTC) + timedelta(seconds=rng.randrange(0, 55))
                    c = call(m, day, keys[m], projects[m], at=at + timedelta(seconds=90))
                    track(c, at)
                    biller.bill(c)
                    # each day's side at that day's price: the two differ when the price changes at
                    # the midnight the calls cross
                    missing = biller.cost(dataclasses.replace(c, at=at))
                    world.planted.append(Planted("timing", m.provider, m.canonical, day, -missing))
                    world.planted.append(Planted("timing", m.provider, m.canonical, day + timedelta(days=1),
                                                 biller.cost(c)))
        if day in unpriced_days:
            for _ in range(rng.randint(3, 12)):
                c = call(UNPRICED, day, f"key_{seed:08x}", "proj_labs")
                biller.bill(c)
                track(c)
                world.planted.append(Planted("unpriced_model", UNPRICED.provider, UNPRICED.canonical, day,
                                             biller.cost(c)))
        if day in long_days:
            for _ in range(rng.randint(1, 2)):
                c = call(LONG_MODEL, day, f"key_{seed:08x}a", "wrkspc_docs", long=True)
                biller.bill(c)
                track(c)
                base = prices[(LONG_MODEL.canonical, "standard", False)]
                gap = biller.cost(c) - (c.input * base["input"] + c.cached * base["cached"]
                                        + c.written * base["cache_write"] + c.output * base["output"])
                world.planted.append(Planted("long_context", LONG_MODEL.provider, LONG_MODEL.canonical, day, gap))
    # rounding on another model than the price change's: on a small day, lines rounded to the cent hide the
    # new price per token (the reconciliation then rightly calls the day rounding, but not the re-price)
    others = [m for m in models if m is not price_model]
    rounded = {(m.provider, d, m.canonical) for d in rounded_days for m in [rng.choice(others)]}
    world.ledger = biller.ledger(rounded, world.planted)
    world.billed_usd = sum((c.amount_usd for c in world.ledger.openai_costs), Decimal(0)) + sum(
        (c.amount_cents / 100 for c in world.ledger.anthropic_costs), Decimal(0))
    return world


# ---------------------------------------------------------------- the tracked side, through ingest
def ingest(calls: Iterable[TrackedCall], functions_url: str, api_key: str, batch: int = 1000) -> int:
    """POST the calls to /ingest as the SDK does; the number stored."""
    events = [c.event() for c in calls]
    with httpx.Client(timeout=120) as http:
        for i in range(0, len(events), batch):
            r = http.post(f"{functions_url}/ingest", json={"events": events[i:i + batch]},
                          headers={"Authorization": f"Bearer {api_key}"})
            r.raise_for_status()
    return len(events)


# ---------------------------------------------------------------- a bill for calls already tracked
def bill_rows(  # noqa: C901 - one pass over the calls, each planted gap a few lines of its own
    rows: list[dict[str, Any]], prices: Prices, seed: int
) -> tuple[AdminLedger, list[Planted]]:
    """What the providers would bill for tracked usage rows (usage_records' columns and canonical_model),
    with gaps planted in it: traffic under a key we never saw, a price change, web searches, calls billed
    after midnight, and cache reads the SDK under-reported. The truth of each is returned with the ledger."""
    rng = random.Random(seed)
    biller = _Biller(prices)
    planted: list[Planted] = []
    calls: list[_Call] = []
    for r in rows:
        m = Model(r["provider"], r["model"], r["canonical_model"])
        if (m.canonical, "standard", False) not in prices:
            continue
        inp = int(r["input_tokens"]) - int(r["cached_tokens"]) - int(r["cache_write_tokens"])
        calls.append(_Call(m, r["occurred_at"].astimezone(UTC), f"key_{sum(map(ord, m.name)):06d}", "proj_main",
                           "batch" if r["service_tier"] == "batch" else "standard", inp, int(r["cached_tokens"]),
                           int(r["cache_write_tokens"]), int(r["output_tokens"])))
    if not calls:
        return biller.ledger(set(), planted), planted
    days = sorted({c.at.date() for c in calls})[:-1] or [calls[0].at.date()]
    chat = [c for c in calls if "embedding" not in c.model.name]
    by_model: dict[str, list[_Call]] = defaultdict(list)
    for c in chat:
        by_model[c.model.canonical].append(c)
    if not by_model:
        for c in calls:
            biller.bill(c)
        return biller.ledger(set(), planted), planted
    busiest = max(by_model, key=lambda k: len(by_model[k]))
    changed = rng.choice(sorted(k for k in by_model if k != busiest) or [busiest])
    since = rng.choice(days[len(days) // 2:])
    factor = Decimal("1.2")
    biller.factor[(changed, since)] = factor
    untracked_days = set(rng.sample(days, min(2, len(days))))
    # apart from the untracked days, for the reason `generate` gives
    late_days = [d for d in days[:-1] or days if d not in untracked_days]
    timing_days = set(rng.sample(late_days, min(2, len(late_days))))
    cached_model = rng.choice(sorted(k for k, cs in by_model.items() if any(c.cached for c in cs)) or [busiest])
    cache_days = set(rng.sample(days, min(3, len(days))))
    search_days = set(rng.sample(days, min(3, len(days))))
    late: dict[tuple[str, date], int] = defaultdict(int)
    for c in sorted(chat, key=lambda c: c.at, reverse=True):  # the last calls of a day, latest first
        day = c.at.date()
        if c.model.canonical == busiest and day in timing_days and late[(busiest, day)] < 3:
            late[(busiest, day)] += 1
            tracked = biller.cost(c)
            c.at = datetime.combine(day + timedelta(days=1), time(0, 0, 30), UTC)
            billed = biller.cost(c)  # the next day's price, should the price change fall between
            planted += [Planted("timing", c.model.provider, c.model.canonical, day, -tracked),
                        Planted("timing", c.model.provider, c.model.canonical, c.at.date(), billed)]
        if c.model.canonical == cached_model and day in cache_days and c.input > 100 and rng.random() < 0.5:
            moved = c.input // 3
            u = biller.unit(c.model, c.tier, False, day)
            c.input -= moved
            c.cached += moved
            planted.append(Planted("cache_accounting", c.model.provider, c.model.canonical, day,
                                   moved * (u["cached"] - u["input"])))
        if c.model.provider == "anthropic" and day in search_days and rng.random() < 0.2:
            c.searches = rng.randint(1, 3)
            planted.append(Planted("tool_fees", c.model.provider, None, day, c.searches * WEB_SEARCH_USD))
    for c in calls:
        biller.bill(c)
        if c.model.canonical == changed and c.at.date() >= since:
            u = biller.unit(c.model, c.tier, False, c.at.date())
            old = {k: v / factor for k, v in u.items()}
            planted.append(Planted("price_change", c.model.provider, c.model.canonical, c.at.date(), sum(
                (n * (u[k] - old[k]) for k, n in (("input", c.input), ("cached", c.cached),
                                                   ("cache_write", c.written), ("output", c.output))), Decimal(0))))
    for day in untracked_days:
        today = [c for c in by_model[busiest] if c.at.date() == day]
        shadow = f"key_{rng.getrandbits(32):08x}"
        for c in rng.sample(today, max(1, len(today) // 6)) if today else []:
            extra = _Call(c.model, c.at, shadow, "proj_shadow", c.tier, c.input, c.cached, c.written, c.output)
            biller.bill(extra)
            planted.append(Planted("untracked_traffic", c.model.provider, c.model.canonical, day, biller.cost(extra),
                                   shadow))
    return biller.ledger(set(), planted), planted
