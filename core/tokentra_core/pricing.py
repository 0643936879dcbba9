"""Load genai-prices into Postgres: its providers, name rules and effective-dated prices.

Python only copies data; `private.usage_cost` prices calls in SQL. genai-prices' own logic decides
every value stored: names are resolved with `find_model`, prices with `ModelInfo.get_prices` at each
instant where its conditions (start dates, times of day, service-tier variants) change.
"""

# The SQL below is assembled only from this module's constant table and column names; every value goes
# through a parameter or COPY.
# ruff: noqa: S608

from __future__ import annotations

import json
import time as clock
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import psycopg
from genai_prices import __version__ as genai_prices_version
from genai_prices import types as gp
from genai_prices.data_snapshot import get_snapshot
from psycopg.rows import tuple_row
from pydantic import BaseModel, ConfigDict

from tokentra_core.db import Conn, one

__all__ = ("SyncResult", "sync_prices")

# The units a usage row can carry: its tokens and the request itself.
PRICED_KEYS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok", "output_reasoning_mtok",
               "requests_kcount")
SOURCE = f"genai-prices {genai_prices_version}"
_CLAUSES = {gp.ClauseEquals: "equals", gp.ClauseStartsWith: "starts_with", gp.ClauseEndsWith: "ends_with",
            gp.ClauseContains: "contains", gp.ClauseRegex: "regex"}
_CATALOGUE = {
    "price_providers": "provider_id, position, name, api_pattern, fallback_provider_ids",
    "price_models": "provider_id, model_id, position, name, context_window, deprecated",
    "price_match_rules": "scope, provider_id, model_id, position, conjunct, atoms, kind, pattern",
    "price_model_names": "provider_id, name, model_provider_id, model_id, direct",
}
_KEY = "provider_id, model_id, service_tier"
_SLOT = "daily_from, daily_until, above_input_tokens, " + ", ".join(PRICED_KEYS) + ", prices"
# One fingerprint per price set, computed the same way over stored and wanted rows.
_SET_HASH = (f"md5(string_agg(concat_ws('|', daily_from, daily_until, above_input_tokens, "
             f"{', '.join(f'coalesce(trim_scale({k})::text, $$-$$)' for k in PRICED_KEYS)}, prices::text), "
             f"';' order by daily_from, above_input_tokens))")
_WANT_SETS = (f"select {_KEY}, seg, nullif(effective_from, '-infinity'), {_SET_HASH} from want_prices "
              f"group by {_KEY}, seg, effective_from")
_HAVE_SETS = (f"select {_KEY}, nullif(effective_from, '-infinity'), {_SET_HASH} from private.model_prices "
              f"where source like 'genai-prices%' group by {_KEY}, effective_from")
# A synced set at the very instant of a new one (genai-prices corrected a dated price) is replaced;
# rows entered by hand are never touched: `on conflict do nothing` keeps them.
_DROP_REPLACED = ("delete from private.model_prices m using put_prices p "
                  "where (m.provider_id, m.model_id, m.service_tier) "
                  "= (p.provider_id, p.model_id, p.service_tier) and m.source like 'genai-prices%' "
                  "and m.effective_from = coalesce(p.effective_from, '-infinity')")
_PUT = (f"insert into private.model_prices ({_KEY}, effective_from, {_SLOT}, source) "
        f"select {_KEY}, coalesce(p.effective_from, '-infinity'), {_SLOT}, %s "
        f"from want_prices w join put_prices p using ({_KEY}, seg) on conflict do nothing")
_ANALYZE = ("analyze private.price_match_rules, private.price_model_names, private.price_providers, "
            "private.price_models, private.model_prices")


class SyncResult(BaseModel):
    """What a sync did: catalogue replaced or not, price sets added, usage rows re-priced."""

    model_config = ConfigDict(frozen=True)
    providers: int
    models: int
    catalogue_changed: bool
    price_sets_added: int
    price_rows_added: int
    repriced: int
    skipped_rules: tuple[str, ...]
    seconds: float


def _dnf(clause: object) -> list[list[tuple[str, str]]]:
    """A clause tree as OR of ANDs of (kind, pattern) atoms; patterns lower-cased as genai-prices compares."""
    if isinstance(clause, gp.ClauseOr):
        return [conj for sub in clause.or_ for conj in _dnf(sub)]
    if isinstance(clause, gp.ClauseAnd):
        out: list[list[tuple[str, str]]] = [[]]
        for sub in clause.and_:
            out = [a + b for a in out for b in _dnf(sub)]
        return [conj or [("contains", "")] for conj in out]  # and([]) is always true
    kind = _CLAUSES[type(clause)]
    value = getattr(clause, kind)
    return [[(kind, value if kind == "regex" else value.lower())]]


def _rules(scope: str, provider_id: str, model_id: str | None, position: int, clause: object) -> list[tuple]:
    return [(scope, provider_id, model_id, position, n, len(conj), kind, pattern)
            for n, conj in enumerate(_dnf(clause)) for kind, pattern in conj]


def _names(clause: object) -> Iterable[str]:
    """Names traffic sends verbatim: equals patterns; prefix and substring stems, bare and as Bedrock ids."""
    if isinstance(clause, gp.ClauseEquals):
        yield clause.equals.lower()
    elif isinstance(clause, gp.ClauseStartsWith | gp.ClauseContains):
        stem = getattr(clause, _CLAUSES[type(clause)]).lower()
        yield from (stem, f"{stem}-v1:0")
    for sub in getattr(clause, "or_", []) + getattr(clause, "and_", []):
        yield from _names(sub)


def _catalogue(providers: list[gp.Provider]) -> dict[str, list[tuple]]:
    """Providers, models, rules, and a cache of names as genai-prices resolves them at each provider."""
    by_id = {p.id: p for p in providers}
    owner = {id(m): p.id for p in providers for m in p.models}
    rows: dict[str, list[tuple]] = {name: [] for name in _CATALOGUE}
    for pos, p in enumerate(providers):
        fallbacks = [f for f in p.fallback_model_providers or [] if f in by_id]
        rows["price_providers"].append((p.id, pos, p.name, p.api_pattern, fallbacks))
        if p.model_match is not None:
            rows["price_match_rules"] += _rules("provider_model", p.id, None, pos, p.model_match)
        if p.provider_match is not None:
            rows["price_match_rules"] += _rules("provider_name", p.id, None, pos, p.provider_match)
        for mpos, m in enumerate(p.models):
            rows["price_models"].append((p.id, m.id, mpos, m.name, m.context_window, bool(m.deprecated)))
            rows["price_match_rules"] += _rules("model", p.id, m.id, mpos, m.match)
        names = {n for q in [p, *(by_id[f] for f in fallbacks)] for m in q.models
                 for n in [m.id.lower(), *_names(m.match)]}
        for name in sorted(names):
            if (found := p.find_model(name, all_providers=providers)) is not None:
                home = owner[id(found)]
                rows["price_model_names"].append((p.id, name, home, found.id, home == p.id))
    return rows


def _utc_time(value: time) -> time:
    if value.tzinfo is None:
        return value
    return datetime.combine(date(1970, 1, 1), value).astimezone(UTC).time()


def _price_json(price: gp.ModelPrice) -> str:
    out: dict[str, object] = {}
    for key, value in price.__dict__.items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, gp.TieredPrices):
            out[key] = {"base": str(value.base), "tiers": [[t.start, str(t.price)] for t in value.tiers]}
        else:
            out[key] = str(value)
    return json.dumps(out, sort_keys=True)


def _at_threshold(value: Decimal | gp.TieredPrices | None, above: int) -> Decimal | None:
    """The price a call with more than `above` input tokens pays: genai-prices' cliff tiers."""
    if not isinstance(value, gp.TieredPrices):
        return value
    price = value.base
    for tier in value.tiers:
        if tier.start <= above:
            price = tier.price
    return price


def _tier_rows(price: gp.ModelPrice) -> list[tuple]:
    values = [getattr(price, k, None) for k in PRICED_KEYS]
    starts = sorted({t.start for v in values if isinstance(v, gp.TieredPrices) for t in v.tiers})
    blob = _price_json(price)
    return [(above, *(_at_threshold(v, above) for v in values), blob) for above in [-1, *starts]]


def _contexts(model: gp.ModelInfo) -> dict[str, dict[str, str] | None]:
    """Service tiers usage rows can name: '' (standard), genai-prices' service_tier values, and batch."""
    out: dict[str, dict[str, str] | None] = {"": None}
    for v in model.price_variants or ():
        if v.when.keys() == {"service_tier"}:
            out[v.when["service_tier"].lower()] = dict(v.when)
        elif v.when == {"processing": "batch"}:
            out.setdefault("batch", dict(v.when))
    return out


def _price_sets(model: gp.ModelInfo, ctx: dict[str, str] | None) -> list[tuple[datetime | None, list[tuple]]]:
    """[(effective_from, None = always), rows] at every instant genai-prices' conditions change."""
    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    constraints += [v.constraint for v in model.price_variants or () if ctx and v.when == ctx]
    dates = sorted({c.start_date for c in constraints if isinstance(c, gp.StartDateConstraint)})
    cuts = sorted({time(0)} | {_utc_time(t) for c in constraints if isinstance(c, gp.TimeOfDateConstraint)
                               for t in (c.start_time, c.end_time)})
    sets: list[tuple[datetime | None, list[tuple]]] = []
    for start in [None, *dates]:
        day = start or (dates[0] - timedelta(days=1) if dates else date(2000, 1, 1))
        windows: list[list] = []  # [daily_from, daily_until (None = 24:00), ModelPrice]
        for i, cut in enumerate(cuts):
            price = model.get_prices(datetime.combine(day, cut, tzinfo=UTC), ctx)
            until = cuts[i + 1] if i + 1 < len(cuts) else None
            if windows and _price_json(windows[-1][2]) == _price_json(price):
                windows[-1][1] = until
            else:
                windows.append([cut, until, price])
        rows = [(w[0], w[1], *r) for w in windows for r in _tier_rows(w[2])]
        if not sets or sets[-1][1] != rows:
            sets.append((None if start is None else datetime.combine(start, time(0), tzinfo=UTC), rows))
    return sets


def _price_rows(providers: Sequence[gp.Provider]) -> Iterable[tuple]:
    for p in providers:
        for m in p.models:
            for tier, ctx in _contexts(m).items():
                for seg, (eff, rows) in enumerate(_price_sets(m, ctx)):
                    for r in rows:
                        yield (p.id, m.id, tier, seg, eff, *r)


def _key(eff: datetime | None) -> tuple:
    return (0,) if eff is None else (1, eff)


def _plan(have: dict[tuple, list], want: dict[tuple, list], now: datetime) -> list[tuple]:
    """Sets to add as (key..., seg, effective_from). A new model gets all its sets; a known one is
    corrected where genai-prices dates a change (from that date) and from now on for undated changes."""
    puts = []
    for key, segs in want.items():
        stored = sorted(have.get(key, []), key=lambda s: _key(s[0]))
        if not stored:
            puts += [(*key, seg, eff) for seg, eff, _ in segs]
            continue
        dated = [eff for _, eff, _ in segs if eff is not None]
        floor = min([now, *dated])
        for point in sorted({now, *dated, *(e for e, _ in stored if e is not None and e >= floor)}):
            seg, _, wanted = [s for s in segs if _key(s[1]) <= _key(point)][-1]
            current = [h for e, h in stored if _key(e) <= _key(point)][-1]
            if current != wanted:
                stored = [*(s for s in stored if s[0] != point), (point, wanted)]
                stored.sort(key=lambda s: _key(s[0]))
                puts.append((*key, seg, point))
    return puts


def _copy(cur: psycopg.Cursor, table: str, cols: str, rows: Iterable[tuple]) -> None:
    with cur.copy(f"copy {table} ({cols}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _load_catalogue(cur: psycopg.Cursor, providers: list[gp.Provider]) -> tuple[bool, list[str]]:
    """Stage the catalogue; replace the stored one only if it differs. Returns (changed, skipped regexes)."""
    rows = _catalogue(providers)
    skipped = []
    for pattern in sorted({r[7] for r in rows["price_match_rules"] if r[6] == "regex"}):
        try:
            with cur.connection.transaction():
                cur.execute("select '' ~ %s", (pattern,))
        except psycopg.errors.InvalidRegularExpression:
            skipped.append(pattern)  # its conjunct can then never match: the rule is off, not wrong
    rows["price_match_rules"] = [r for r in rows["price_match_rules"]
                                 if r[6] != "regex" or r[7] not in skipped]
    changed = False
    for table, cols in _CATALOGUE.items():
        cur.execute(f"create temp table if not exists want_{table} on commit drop as "
                    f"select {cols} from private.{table} with no data")
        cur.execute(f"truncate want_{table}")
        _copy(cur, f"want_{table}", cols, rows[table])
        want, have = f"select {cols} from want_{table}", f"select {cols} from private.{table}"
        cur.execute(f"select exists ({want} except all {have}) or exists ({have} except all {want})")
        changed = one(cur)[0] or changed
    if changed:
        for table, cols in _CATALOGUE.items():
            cur.execute(f"delete from private.{table}")
            cur.execute(f"insert into private.{table} ({cols}) select {cols} from want_{table}")
    return changed, skipped


def _load_prices(cur: psycopg.Cursor, providers: list[gp.Provider]) -> tuple[list[tuple], int]:
    """Add the price sets genai-prices implies and the table lacks. Returns (puts, rows added)."""
    cur.execute(f"create temp table if not exists want_prices on commit drop as "
                f"select {_KEY}, 0 as seg, effective_from, {_SLOT} from private.model_prices with no data")
    cur.execute("create temp table if not exists put_prices on commit drop as "
                f"select {_KEY}, seg, effective_from from want_prices with no data")
    cur.execute("truncate want_prices, put_prices")
    _copy(cur, "want_prices", f"{_KEY}, seg, effective_from, {_SLOT}", _price_rows(providers))
    cur.execute("update want_prices set daily_until = coalesce(daily_until, '24:00'), "
                "effective_from = coalesce(effective_from, '-infinity')")
    want: dict[tuple, list] = {}
    for pid, mid, tier, seg, eff, digest in cur.execute(_WANT_SETS).fetchall():
        want.setdefault((pid, mid, tier), []).append((seg, eff, digest))
    for segs in want.values():
        segs.sort(key=lambda s: _key(s[1]))
    have: dict[tuple, list] = {}
    for pid, mid, tier, eff, digest in cur.execute(_HAVE_SETS).fetchall():
        have.setdefault((pid, mid, tier), []).append((eff, digest))
    puts = _plan(have, want, one(cur.execute("select now()"))[0])
    if not puts:
        return puts, 0
    _copy(cur, "put_prices", f"{_KEY}, seg, effective_from", puts)
    cur.execute(_DROP_REPLACED)
    cur.execute(_PUT, (SOURCE,))
    return puts, cur.rowcount


def sync_prices(conn: Conn, providers: Sequence[gp.Provider] | None = None) -> SyncResult:
    """Bring the catalogue and prices up to genai-prices (its bundled data unless `providers` is
    given), then re-price the usage the change affects. Idempotent: a second run writes nothing.
    Commits on an idle connection; inside the caller's transaction it is a savepoint of it."""
    started = clock.perf_counter()
    providers = list(get_snapshot().providers if providers is None else providers)
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('tokentra.sync_prices'))")
        changed, skipped = _load_catalogue(cur, providers)
        puts, added = _load_prices(cur, providers)
        if changed or puts:  # the planner needs statistics before the next ingest, not after autovacuum
            cur.execute(_ANALYZE)
        if changed:  # names may now resolve to other models: every row is a candidate
            cur.execute("select private.reprice_usage(null, false)")
        elif puts:  # only the models whose prices changed, from the earliest change on
            effs = [p[4] for p in puts]
            cur.execute("select private.reprice_usage_rows(null, false, %s, %s)",
                        (sorted({f"{p[0]}/{p[1]}" for p in puts}), None if None in effs else min(effs)))
        else:
            cur.execute("select private.reprice_usage(null, true)")
        repriced = one(cur)[0]
        # The model registry serves a materialized copy of prices and families: bring it up to date now
        # rather than at its next periodic refresh (absent on databases migrated before it existed).
        if (changed or puts) and one(cur.execute(
                "select to_regprocedure('private.refresh_model_registry()') is not null"))[0]:
            cur.execute("select private.refresh_model_registry()")
    return SyncResult(
        providers=len(providers), models=sum(len(p.models) for p in providers), catalogue_changed=changed,
        price_sets_added=len(puts), price_rows_added=added, repriced=repriced, skipped_rules=tuple(skipped),
        seconds=round(clock.perf_counter() - started, 3))
