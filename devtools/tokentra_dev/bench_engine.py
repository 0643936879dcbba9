"""`tokentra bench engine`: the recommendation engine over many organizations, timed.

In a scratch database (created, migrated and given the pricing tables, dropped afterwards unless
--keep) it generates organizations with 30 days of usage in one set-based INSERT per batch, priced by
private.usage_cost as ingest prices, then materializes the rollups as the periodic refresh does, so the
engine reads what it reads in production: the rollups plus the raw rows behind its per-pattern
aggregates. Each organization gets a few features on real models with task types, repeated prompts,
shared system prompts, end users, errors, retries and timeouts, sizes spread log-normally (many small
organizations, a few large). Then it runs the real `recommendations` job over all of them as scheduled
(one call, its chunks spread over its connections), and profiles a sample chunk on one connection to say
where the time goes (target: 1,000 organizations in under 20 s).
"""

from __future__ import annotations

import cProfile
import json
import pstats
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tokentra_core.migrations import migrate
from tokentra_core.settings import get_settings

__all__ = ["run"]

BENCH_DB = "tokentra_bench_engine"
BATCH = 100  # organizations per generating INSERT and per progress line

# Priced models and the task types their features carry; a feature keeps one model.
_MODELS = """(values (0, 'openai', 'gpt-4o', 'classification'), (1, 'openai', 'gpt-4o-mini', 'summarization'),
  (2, 'anthropic', 'claude-sonnet-4-20250514', 'code_generation'), (3, 'openai', 'gpt-4-turbo', 'data_extraction'),
  (4, 'anthropic', 'claude-3-5-haiku-latest', 'faq'), (5, 'google', 'gemini-2.0-flash', 'chitchat'),
  (6, 'openai', 'text-embedding-3-small', null)) as m(k, provider, model, task_type)"""

_GENERATE = f"""
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
  cached_tokens, status, retry_count, is_timeout, is_rate_limited, cache_hit, prompt_hash, system_prompt_hash,
  task_type, team, feature, end_user_id, latency_ms, cost_usd, priced)
select o.id, r.at, r.request_id, m.provider, m.model, r.input_tokens, r.output_tokens, 0, r.status,
       r.retries, r.status = 'timeout', r.status = 'rate_limited', false,
       md5(o.id::text || r.feature || floor(random() * o.n * 0.8)::int),
       case when r.feature_no %% 2 = 0 then md5(o.id::text || r.feature) end,
       m.task_type, 'team-' || r.feature_no %% 3, r.feature, 'user-' || floor(random() * 50)::int,
       case when r.status = 'timeout' then 60000 else 200 + floor(random() * 3000)::int end,
       c.cost_usd, c.cost_usd is not null
from (select id, nth, greatest(20, round(%(rows)s * exp(0.9 * sqrt(-2 * ln(1 - random()))
                                                       * cos(2 * pi() * random()) - 0.405)))::int as n
      from (select id, row_number() over (order by id) as nth from public.organizations
            where name like 'bench-engine-%%') x
      where nth > %(done)s and nth <= %(done)s + %(batch)s) o
cross join lateral generate_series(1, o.n) g(n)
cross join lateral (
  select md5(o.id::text || g.n) as request_id, %(now)s - random() * interval '30 days' as at,
         f as feature_no, 'feature-' || f as feature,
         (200 + floor(random() * 4000))::int8 as input_tokens,
         (case when (o.nth + f) %% 7 = 6 then 0 else 20 + floor(random() * 600) end)::int8 as output_tokens,
         case when s < 0.015 then 'error' when s < 0.02 then 'timeout' when s < 0.025 then 'rate_limited'
              when s < 0.03 then 'cancelled' else 'success' end as status,
         (random() < 0.05)::int as retries
  from (select floor(random() * (2 + o.nth %% 5))::int as f, random() as s) p
) r
join {_MODELS} on m.k = (o.nth + r.feature_no) %% 7
cross join lateral private.usage_cost(m.provider, m.model, r.at, r.input_tokens, r.output_tokens, 0, 0, 0) c
"""


def _scratch(base: str, database: str, log: Callable[[str], None]) -> str:
    dsn = make_conninfo(**{**conninfo_to_dict(base), "dbname": database})
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{database}" with (force)')
        conn.execute(f'create database "{database}"')
    t0 = time.perf_counter()
    migrate(dsn, log=lambda *_: None)
    from tokentra_core.pricing import sync_prices

    with psycopg.connect(dsn) as conn:
        sync_prices(conn)
        conn.commit()
    log(f"scratch database {database}: migrated and priced in {time.perf_counter() - t0:.1f} s")
    return dsn


def _generate(dsn: str, orgs: int, rows: int, now: datetime, log: Callable[[str], None]) -> dict[str, Any]:
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select setseed(0.42)")
        conn.execute(
            "insert into public.organizations (name) select 'bench-engine-' || i from generate_series(1, %s) i",
            (orgs,),
        )
        for done in range(0, orgs, BATCH):
            conn.execute(_GENERATE, {"rows": rows, "done": done, "batch": BATCH, "now": now})
            n = conn.execute("select count(*) from public.usage_records").fetchone()[0]
            log(f"  generated {min(done + BATCH, orgs):>5d}/{orgs} organizations, {n:,} usage rows, "
                f"{time.perf_counter() - t0:.1f} s")
        t1 = time.perf_counter()
        conn.execute("select private.refresh_usage_rollups(%s, null)", (now,))
        conn.execute("vacuum analyze")
        counts = conn.execute(
            "select (select count(*) from public.usage_records) as usage_rows, "
            "(select count(*) from private.usage_rollup_hourly) as hourly_rows, "
            "(select count(*) from private.usage_rollup_daily) as daily_rows, "
            "(select count(*) from private.end_user_rollup_daily) as end_user_rows"
        ).fetchone()
    out = dict(zip(("usage_rows", "hourly_rollup_rows", "daily_rollup_rows", "end_user_rollup_rows"), counts,
                   strict=True))
    out |= {"generate_s": round(t1 - t0, 1), "rollups_s": round(time.perf_counter() - t1, 1)}
    log(f"rollups materialized in {out['rollups_s']} s: {out['hourly_rollup_rows']:,} hourly, "
        f"{out['daily_rollup_rows']:,} daily, {out['end_user_rollup_rows']:,} end-user daily rows")
    return out


def _timed_run(dsn: str, now: datetime, log: Callable[[str], None]) -> tuple[float, dict[str, int]]:
    from tokentra_worker.recommendations import run_recommendations

    with psycopg.connect(dsn) as conn:
        orgs = [str(r[0]) for r in conn.execute(
            "select id from public.organizations where name like 'bench-engine-%' order by id")]
    # One call over every organization, as the scheduled job runs (its chunks spread over its connections).
    t0 = time.perf_counter()
    summary = run_recommendations(dsn, now=now, orgs=orgs)
    seconds = time.perf_counter() - t0
    log(f"  {len(orgs)} organizations in {seconds:6.1f} s   ({summary.split(': ', 1)[-1]})")
    with psycopg.connect(dsn) as conn:
        by_status = dict(conn.execute("select status, count(*) from public.recommendations group by 1").fetchall())
    return seconds, by_status


def _breakdown(dsn: str, now: datetime, sample: int) -> dict[str, float]:
    """Milliseconds per organization spent in each part of the job over a sample chunk on one connection: the
    whole job, its detectors and its writing (cProfile), and each SQL detector (its one statement for the
    chunk, timed alone, reading the chunk's remembered scope sums as in the job)."""
    from tokentra_worker import recommendations as rec

    with psycopg.connect(dsn) as conn:
        orgs = [str(r[0]) for r in conn.execute(
            "select id from public.organizations where name like 'bench-engine-%%' order by id limit %s", (sample,))]
    profile = cProfile.Profile()
    profile.runcall(rec.run_recommendations, dsn, now, orgs, 1)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_code = {(f, line, name): v[3] for (f, line, name), v in stats.items()}

    def cumulative(fn: Callable) -> float:
        code = fn.__code__
        return by_code.get((code.co_filename, code.co_firstlineno, code.co_name), 0.0) / len(orgs)

    parts = {"whole job": cumulative(rec.run_recommendations),
             "detectors, all (one chunk)": cumulative(rec.detect_chunk)}
    with psycopg.connect(dsn, row_factory=dict_row) as dict_conn:
        dict_conn.execute("select set_config('jit', 'off', false), set_config('work_mem', '64MB', false)")
        t0 = time.perf_counter()
        dict_conn.execute("select private.detector_scopes_remember(%s::uuid[], %s)", (orgs, now))
        parts["scope sums, remembered once"] = (time.perf_counter() - t0) / len(orgs)
        for category, function in sorted(rec.sql_detectors(dict_conn).items()):
            if function is None:
                continue
            schema, _, name = function.partition(".")
            query = sql.SQL("select count(*) from {}(%s::uuid[], %s)").format(sql.Identifier(schema, name))
            t0 = time.perf_counter()
            dict_conn.execute(query, (orgs, now))
            parts[f"detector {category} (SQL)"] = (time.perf_counter() - t0) / len(orgs)
        dict_conn.rollback()
    parts["write, expire, realised savings"] = cumulative(rec.record)
    return {k: round(v * 1000, 2) for k, v in parts.items()}


def run(orgs: int = 1000, rows_per_org: int = 1000, sample: int = 50, keep: bool = False,
        as_json: bool = False, database: str = BENCH_DB) -> dict[str, Any]:
    log: Callable[[str], None] = (lambda _m: None) if as_json else print
    base = get_settings().dsn
    now = datetime.now(UTC)
    dsn = _scratch(base, database, log)
    try:
        out: dict[str, Any] = {"organizations": orgs, "mean_rows_per_org": rows_per_org}
        out |= _generate(dsn, orgs, rows_per_org, now, log)
        log(f"recommendations job over {orgs} organizations (first run):")
        seconds, totals = _timed_run(dsn, now, log)
        out |= {"first_run_s": round(seconds, 1), "first_run": totals}
        log("again, as every later run (open recommendations updated):")
        seconds, totals = _timed_run(dsn, now, log)
        out |= {"steady_run_s": round(seconds, 1), "steady_run": totals}
        out["ms_per_org_by_part"] = _breakdown(dsn, now, sample)
    finally:
        if not keep:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{database}" with (force)')
    if as_json:
        print(json.dumps(out, default=str))
        return out
    print(f"first run {out['first_run_s']} s, steady run {out['steady_run_s']} s for {orgs} organizations "
          f"(target under 20 s)")
    print(f"where the time goes (ms per organization, cProfile over {sample} organizations, steady state):")
    for part, ms in out["ms_per_org_by_part"].items():
        print(f"  {part:45s} {ms:8.2f}")
    return out
