"""Pricing in SQL, checked against genai-prices itself: costs, name resolution, effective dating,
idempotent sync and re-pricing. Each test syncs inside its own rolled-back transaction."""

from __future__ import annotations

import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from genai_prices import Usage, calc_price
from genai_prices import types as gp
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

from tokentra_core.pricing import SOURCE, sync_prices

SNAPSHOT = get_snapshot()
PROVIDERS = SNAPSHOT.providers
BY_ID = {p.id: p for p in PROVIDERS}
OWNER = {id(m): p.id for p in PROVIDERS for m in p.models}
COSTS = """
select c.price_id, c.price_model, c.cost_usd
  from unnest(%s::text[], %s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[], %s::bigint[],
              %s::bigint[], %s::bigint[], %s::text[])
       with ordinality as e(provider, model, at, inp, outp, cr, cw, rs, tier, i)
  left join lateral private.usage_cost(e.provider, e.model, e.at, e.inp, e.outp, e.cr, e.cw, e.rs, e.tier) c
    on true
 order by e.i"""


@pytest.fixture
def priced(db: psycopg.Connection) -> psycopg.Connection:
    # Open the test's transaction first: sync_prices on an idle connection commits its own.
    db.execute("select 1")
    sync_prices(db)
    return db


def costs(db: psycopg.Connection, cases: list[tuple]) -> list[tuple]:
    """(price_model, cost_usd, price_id) per (provider, model, at, in, out, cache r/w, reasoning, tier)."""
    rows = db.execute(COSTS, [list(col) for col in zip(*cases, strict=True)]).fetchall()
    return [(r["price_model"], r["cost_usd"], r["price_id"]) for r in rows]


def expected(case: tuple) -> tuple[str | None, Decimal | None]:
    """genai-prices' answer. A model it cannot reach by its own id (85 Bedrock `regional.` ids) is priced by
    that model's calc_price: usage_cost falls back to the bare id."""
    provider_id, ref, at, inp, outp, cr, cw, rs, tier = case
    usage = Usage(input_tokens=inp, output_tokens=outp, cache_read_tokens=cr, cache_write_tokens=cw,
                  output_reasoning_tokens=rs)
    ctx = None if tier is None else {"processing": "batch"} if tier == "batch" else {"service_tier": tier}
    try:
        calc = calc_price(usage, ref, provider_id=provider_id, genai_request_timestamp=at, price_context=ctx)
    except LookupError:
        provider = BY_ID.get(provider_id)
        model = next((m for m in provider.models if m.id == ref), None) if provider else None
        if model is None:
            return None, None
        calc = model.calc_price(usage, BY_ID[provider_id], genai_request_timestamp=at, price_context=ctx)
    return f"{OWNER[id(calc.model)]}/{calc.model.id}", calc.total_price


def cases_for(rng: random.Random, provider: gp.Provider, model: gp.ModelInfo) -> list[tuple]:
    """Random calls to one model: around its start dates and daily windows, across its long-context tiers."""
    prices = [c.prices for c in model.prices] if isinstance(model.prices, list) else [model.prices]
    prices += [v.prices for v in model.price_variants or ()]
    starts = sorted({t.start for mp in prices for v in mp.__dict__.values()
                     if isinstance(v, gp.TieredPrices) for t in v.tiers})
    conds = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    conds += [v.constraint for v in model.price_variants or ()]
    days = [datetime.combine(c.start_date, datetime.min.time(), UTC) for c in conds
            if isinstance(c, gp.StartDateConstraint)]
    instants = [datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(5 * 365 * 86400))
                for _ in range(3)] + [d + timedelta(seconds=s) for d in days for s in (-1, 0, 43_200)]
    tiers = [None, *sorted({str(v.when.get("service_tier", "batch")) for v in model.price_variants or ()})]
    sizes = [rng.randrange(0, 50_000), *(s + d for s in starts for d in (0, 1, rng.randrange(1, s + 2)))]
    out = []
    for at in instants:
        for inp in sizes:
            cr = rng.randrange(0, inp // 2 + 1)
            cw = rng.randrange(0, inp - cr + 1) if rng.random() < 0.5 else 0
            outp = rng.randrange(0, 20_000)
            rs = rng.randrange(0, outp + 1)
            out.append((provider.id, model.id, at, inp, outp, cr, cw, rs, rng.choice(tiers)))
    return out


def test_usage_cost_equals_genai_prices_to_the_last_decimal(priced: psycopg.Connection) -> None:
    rng = random.Random(20261122)
    main = [(p, m) for p in PROVIDERS if p.id in ("openai", "anthropic", "google") for m in p.models]
    others = rng.sample([(p, m) for p in PROVIDERS if p.id not in ("openai", "anthropic", "google")
                         for m in p.models], 300)
    cases = [c for p, m in main + others for c in cases_for(rng, p, m)]
    assert len(cases) > 2000
    got = costs(priced, cases)
    wrong = [(case, g[:2], want) for case, g in zip(cases, got, strict=True)
             if g[:2] != (want := expected(case))]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"
    assert sum(g[1] is not None and g[1] > 0 for g in got) > 0.9 * len(cases)


def test_long_context_tiers_are_cliffs(priced: psycopg.Connection) -> None:
    # the first tiered model: one token past the threshold bills every token at the tier price
    provider, model = next((p, m) for p in PROVIDERS for m in p.models if isinstance(m.prices, gp.ModelPrice)
                           and isinstance(m.prices.input_mtok, gp.TieredPrices) and not m.price_variants)
    tier = model.prices.input_mtok.tiers[0]
    at = datetime.now(UTC)
    below, above = costs(priced, [(provider.id, model.id, at, n, 0, 0, 0, 0, None)
                                  for n in (tier.start, tier.start + 1)])
    assert below[1] == model.prices.input_mtok.base * tier.start / 1_000_000
    assert above[1] == tier.price * (tier.start + 1) / 1_000_000


RESOLVED_BY_GENAI_PRICES = [
    ("openai", "gpt-4o-2024-08-06"), ("OpenAI", "GPT-4o"), ("anthropic", "claude-sonnet-4-20250514"),
    ("azure", "gpt-4o-2024-08-06"), ("azure", "o3-mini-2025-01-31"), ("azure_openai", "gpt-4o"),
    ("bedrock", "us.anthropic.claude-opus-4-20250514-v1:0"),
    ("aws", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("vertex_ai", "claude-sonnet-4@20250514"), ("google", "gemini-2.5-pro"), ("openai", "gpt-5.2-20251211"),
    ("litellm", "anthropic/claude-3-5-sonnet-20241022"), ("openrouter", "openai/gpt-4o"),
    (None, "claude-3-5-haiku-20241022"), (None, "gemini-2.5-flash"),
]
# genai-prices itself fails on these: a provider prefix in the model name
PREFIXED = [("openai", "openai/gpt-4o", "openai", "gpt-4o"), (None, "openai/gpt-4o", "openai", "gpt-4o"),
            ("anthropic", "anthropic/claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-0")]
UNKNOWN = [("openai", "no-such-model-xyz"), ("acme", "whatever-1"), (None, "no-such-model"), ("aws", "")]


def resolve(db: psycopg.Connection, provider: str | None, model: str) -> tuple[str, str] | None:
    row = db.execute("select * from private.resolve_price_model(%s, %s)", (provider, model)).fetchone()
    return None if row is None else (row["provider_id"], row["model_id"])


def test_names_resolve_as_traffic_sends_them(priced: psycopg.Connection) -> None:
    for provider, ref in RESOLVED_BY_GENAI_PRICES:
        _, model = SNAPSHOT.find_provider_model(ref, None, provider, None)
        assert resolve(priced, provider, ref) == (OWNER[id(model)], model.id), (provider, ref)
    for provider, ref, want_provider, want_model in PREFIXED:
        with pytest.raises(LookupError):
            SNAPSHOT.find_provider_model(ref, None, provider, None)
        assert resolve(priced, provider, ref) == (want_provider, want_model)
    for provider, ref in UNKNOWN:
        assert resolve(priced, provider, ref) is None
        call = (provider, ref, datetime.now(UTC), 10, 10, 0, 0, 0, None)
        assert costs(priced, [call]) == [(None, None, None)]


def test_match_rules_in_sql_agree_with_genai_prices(priced: psycopg.Connection) -> None:
    # Without the sync-time name cache, so every name goes through the rules stored in SQL.
    priced.execute("delete from private.price_model_names")
    rng = random.Random(7)
    names = [(p, f"{m.id.lower()}{suffix}") for p in PROVIDERS
             for q in [p, *(BY_ID[f] for f in p.fallback_model_providers or [])]
             for m in q.models for suffix in ("", "-20250514", "-v1:0")]
    names = [*rng.sample(names, 6000), (BY_ID["openai"], "gpt-5.2-20251211"), (BY_ID["aws"], "eu.anthropic")]
    rows = priced.execute("select f.* from unnest(%s::text[], %s::text[]) with ordinality as n(p, ref, i) "
                          "left join lateral private.find_price_model(n.p, n.ref) f on true order by n.i",
                          ([p.id for p, _ in names], [n for _, n in names])).fetchall()
    for (p, name), row in zip(names, rows, strict=True):
        model = p.find_model(name, all_providers=PROVIDERS)
        if model is None and row["model_id"] is not None:  # the bare-id fallback, genai-prices has none
            assert row["model_id"].lower() == name and row["provider_id"] == p.id
        else:
            want = None if model is None else (OWNER[id(model)], model.id, OWNER[id(model)] == p.id)
            assert (None if row["model_id"] is None else tuple(row.values())) == want, (p.id, name)
    sent = [*BY_ID, "bedrock", "vertex_ai", "azure_openai", "together_ai", "xai", "huggingface-groq", "acme"]
    got = priced.execute("select p.provider_id from unnest(%s::text[]) with ordinality s(n, i) left join "
                         "lateral private.price_provider(s.n) p on true order by s.i", (sent,)).fetchall()
    want = [getattr(find_provider_by_id(PROVIDERS, n), "id", None) for n in sent]
    assert [r["provider_id"] for r in got] == want


def test_compact_dates_are_rewritten_as_genai_prices_does(priced: psycopg.Connection) -> None:
    rng = random.Random(3)
    stems = ["gpt-5.2", "claude-opus-4", "x", ""]
    dates = ["20251211", "20240229", "20250229", "20251301", "20250431", "19991231", "20260100", "2025121"]
    refs = [f"{rng.choice(stems)}-{rng.choice(dates)}{rng.choice(['', '-v1', ':0', 'x', '-20250101'])}"
            for _ in range(300)]
    got = priced.execute("select private.normalize_compact_dates(r) as n "
                         "from unnest(%s::text[]) with ordinality u(r, i) order by i", (refs,)).fetchall()
    assert [r["n"] for r in got] == [gp._normalize_compact_dated_ref(r) for r in refs]


def test_prices_are_effective_dated(priced: psycopg.Connection) -> None:
    # a later price entered by hand: earlier calls keep the old price, later ones get the new
    switch = datetime(2031, 1, 1, tzinfo=UTC)
    priced.execute("insert into private.model_prices (provider_id, model_id, effective_from, input_mtok, "
                   "output_mtok) values ('openai', 'gpt-4o', %s, 100, 200)", (switch,))
    before, after = (("openai", "gpt-4o", switch + timedelta(seconds=s), 1000, 500, 400, 0, 0, None)
                     for s in (-1, 1))
    got_before, got_after = costs(priced, [before, after])
    assert got_before[:2] == expected(before)
    assert got_after[:2] == ("openai/gpt-4o", Decimal("0.2"))  # no cache-read price here: reads pay input
    assert got_before[2] != got_after[2]
    # genai-prices' own start dates and daily windows
    for p, m in [(q, m) for q in PROVIDERS for m in q.models if isinstance(m.prices, list)]:
        for c in [cp.constraint for cp in m.prices if cp.constraint is not None]:
            days = [datetime.combine(c.start_date, datetime.min.time(), UTC) - timedelta(seconds=1),
                    datetime.combine(c.start_date, datetime.min.time(), UTC)] \
                if isinstance(c, gp.StartDateConstraint) else \
                [datetime.combine(datetime(2026, 1, 5).date(), t, UTC) for t in (c.start_time, c.end_time)]
            cases = [(p.id, m.id, at, 2000, 300, 100, 0, 0, None) for at in days]
            got = costs(priced, cases)
            assert [g[:2] for g in got] == [expected(case) for case in cases], (p.id, m.id, c)


def with_prices(providers: list[gp.Provider], provider_id: str, model_id: str, **prices: Decimal) -> list:
    """A copy of the catalogue where one model's prices differ."""
    def change(m: gp.ModelInfo) -> gp.ModelInfo:
        return dataclasses.replace(m, prices=gp.ModelPrice(**{**m.prices.__dict__, **prices}))
    return [dataclasses.replace(p, models=[change(m) if m.id == model_id else m for m in p.models])
            if p.id == provider_id else p for p in providers]


def test_sync_dates_a_changed_price_from_now_and_is_idempotent(priced: psycopg.Connection) -> None:
    tables = ["private.price_providers", "private.price_models", "private.price_match_rules",
              "private.price_model_names", "private.model_prices"]
    def snapshot() -> list:
        return [priced.execute(f"select count(*) as n, md5(string_agg(t::text, ',' order by t::text)) as h "
                               f"from {t} t").fetchone() for t in tables]
    first = snapshot()
    again = sync_prices(priced)
    assert (again.catalogue_changed, again.price_sets_added, again.price_rows_added) == (False, 0, 0)
    assert snapshot() == first and again.seconds < 10
    changed = with_prices(PROVIDERS, "openai", "gpt-4o", input_mtok=Decimal("7.5"))
    result = sync_prices(priced, changed)
    assert not result.catalogue_changed and result.price_sets_added >= 1  # standard, and tiers inheriting it
    assert sync_prices(priced, changed).price_sets_added == 0
    now = priced.execute("select now() as t").fetchone()["t"]
    added = priced.execute("select distinct provider_id, model_id, source from private.model_prices "
                           "where effective_from = %s", (now,)).fetchall()
    assert [tuple(r.values()) for r in added] == [("openai", "gpt-4o", SOURCE)]
    old, new = costs(priced, [("openai", "gpt-4o-2024-08-06", now + timedelta(seconds=s), 10**6, 0, 0, 0, 0,
                               None) for s in (-1, 0)])
    assert old[1] == BY_ID["openai"].find_model("gpt-4o").prices.input_mtok and new[1] == Decimal("7.5")


def test_reprice_prices_rows_once_their_model_is_known(priced: psycopg.Connection) -> None:
    org = priced.execute("insert into public.organizations (name) values ('t') returning id").fetchone()["id"]
    now = priced.execute("select now() as t").fetchone()["t"]
    rows = [("r1", "acme-ai", "acme-large-2025-01-01", now - timedelta(days=1), 120_000, 3_000, 20_000),
            ("r2", "acme", "acme-large", now - timedelta(hours=2), 5_000, 700, 0),
            ("r3", "openai", "gpt-4o", now - timedelta(hours=1), 1_000, 100, 0)]
    with priced.cursor() as cur:
        cur.executemany("insert into public.usage_records (org_id, request_id, provider, model, occurred_at, "
                        "input_tokens, output_tokens, cached_tokens) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                        [(org, *r) for r in rows])

    def reprice(only_unpriced: bool) -> int:
        query = "select private.reprice_usage(%s, %s) as n"
        return priced.execute(query, (org, only_unpriced)).fetchone()["n"]
    assert reprice(True) == 1  # gpt-4o is known; acme is not, yet
    price = gp.ModelPrice(input_mtok=Decimal("1.25"), output_mtok=Decimal(5),
                          cache_read_mtok=Decimal("0.125"))
    model = gp.ModelInfo(id="acme-large", match=gp.ClauseStartsWith(starts_with="acme-large"), prices=price)
    acme = gp.Provider(id="acme-ai", name="Acme AI", api_pattern=r"https://api\.acme\.test",
                       provider_match=gp.ClauseContains(contains="acme"), models=[model])
    result = sync_prices(priced, [*PROVIDERS, acme])
    assert result.catalogue_changed and result.repriced >= 2

    def stored() -> dict:
        return {r["request_id"]: (r["priced"], r["price_model"], r["cost_usd"]) for r in priced.execute(
            "select request_id, priced, price_model, cost_usd from public.usage_records where org_id = %s",
            (org,))}
    want = {r[0]: (True, "acme-ai/acme-large",
                   ((Decimal(r[4] - r[6]) * Decimal("1.25") + r[6] * Decimal("0.125") + r[5] * 5) / 10**6
                    ).quantize(Decimal("1e-12"))) for r in rows[:2]}
    assert {k: v for k, v in stored().items() if k != "r3"} == want
    priced.execute("update public.usage_records set cost_usd = 0 where request_id = 'r1' and org_id = %s",
                   (org,))
    assert (reprice(False), reprice(False)) == (1, 0)  # fixed once, then nothing left to change
    assert {k: v for k, v in stored().items() if k != "r3"} == want
    # a later price change: rows before it keep their cost, a row after it is priced at the new price
    cheaper = with_prices([*PROVIDERS, acme], "acme-ai", "acme-large", input_mtok=Decimal("0.5"))
    assert sync_prices(priced, cheaper).repriced == 0
    priced.execute("insert into public.usage_records (org_id, request_id, provider, model, occurred_at, "
                   "input_tokens) values (%s, 'r4', 'acme-ai', 'acme-large', %s, 10000)",
                   (org, now + timedelta(minutes=1)))
    assert reprice(True) == 1
    assert stored()["r4"] == (True, "acme-ai/acme-large", Decimal("0.005000000000"))
    assert {k: v for k, v in stored().items() if k in want} == want


def test_pricing_a_thousand_events_is_cheap(priced: psycopg.Connection) -> None:
    priced.execute("set local jit = off")  # see the report: JIT compilation alone costs more than the work
    names = ["openai|gpt-4o", "anthropic|claude-sonnet-4-20250514", "google|gemini-2.5-pro",
             "openai|gpt-4o-mini", "bedrock|us.anthropic.claude-opus-4-20250514-v1:0",
             "azure|gpt-4o-2024-08-06"]
    query = ("select count(c.cost_usd) as n from generate_series(1, 1000) g "
             "cross join lateral (select (%s::text[])[1 + g %% 6] as pm) x "
             "cross join lateral private.usage_cost(split_part(x.pm, '|', 1), split_part(x.pm, '|', 2), "
             "now() - g * interval '1 minute', 1000 + g, 200, 100, 0, 50) c")
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert priced.execute(query, (names,)).fetchone()["n"] == 1000
        timings.append(time.perf_counter() - started)
    print(f"pricing 1,000 events: best {min(timings) * 1000:.1f} ms")
    assert min(timings) < 1.0


def test_signed_in_users_read_prices_but_cannot_write_them(priced: psycopg.Connection) -> None:
    priced.execute("set local role authenticated")
    assert priced.execute("select count(*) as n from public.model_prices where provider_id = 'anthropic'"
                          ).fetchone()["n"] > 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        priced.execute("update private.model_prices set input_mtok = 0")
