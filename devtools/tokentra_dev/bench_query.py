"""`tokentra bench query`: the analytics functions on the rollups beside the same aggregates over raw rows.

In one run, on a fresh database of its own on the same server (so the shared one is left alone):
loads N usage rows over 30 days for one organization and N/1000 for each of 100 smaller ones (INSERT ...
SELECT generate_series, straight into public.usage_records, triggers and all), refreshes the rollups,
then times the dashboard overview and 30-day cost breakdowns by model and by feature through the HTTP
functions as a signed-in user, and the same aggregates over the raw rows as the same user. Then: how long
an ingested event takes to show in /costs, and how long the refresh after 10,000 late events takes.
Prints figures; asserts nothing (targets: p95 under 20 ms, 100x raw, visible within 1 s, refresh under 1 s).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import jwt
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console

from tokentra_cli import admin
from tokentra_cli.functions_server import start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.migrations import migrate
from tokentra_core.settings import get_settings

console = Console(soft_wrap=True)
BENCH_DB = "tokentra_bench_query"

# One row per generated call. Dimensions are correlated the way real traffic is (a feature belongs to
# a project and a team and uses two or three models through one key), so a day holds ~150 bucket rows
# per organization however many calls it has. Costs use fixed list prices: the rollups must reproduce
# whatever is stored, so the pricing engine is not what this measures.
LOAD_SQL = """
insert into public.usage_records (
  org_id, occurred_at, request_id, source, provider, model, endpoint, input_tokens, output_tokens,
  cached_tokens, reasoning_tokens, cost_usd, priced, latency_ms, status, error_code, retry_count, is_timeout,
  is_rate_limited, cache_hit, team, project, feature, end_user_id, api_key_id)
select %(org)s, %(start)s::timestamptz + (g - %(lo)s) * %(step)s::interval, %(prefix)s || g, 'bench',
       (array['openai', 'openai', 'anthropic', 'openai', 'google'])[m], (array['gpt-4o', 'gpt-4o-mini',
       'claude-sonnet-4-20250514', 'o3-mini', 'gemini-2.0-flash'])[m], 'chat', inp, outp, cached,
       case when m = 4 then outp / 3 else 0 end,
       round((inp - cached) * (array[2.5, 0.15, 3, 1.1, 0.1])[m] * 0.000001
             + cached * (array[1.25, 0.075, 0.3, 0.55, 0.025])[m] * 0.000001
             + outp * (array[10, 0.6, 15, 4.4, 0.4])[m] * 0.000001, 12),
       true, latency, status, nullif(status, 'success'), retries, status = 'timeout', status = 'rate_limited',
       h2 %% 19 = 0, 'team-' || f %% 6, 'project-' || f %% 9, 'feature-' || f, 'user-' || h2 %% %(users)s,
       (%(keys)s::uuid[])[1 + f %% cardinality(%(keys)s::uuid[])]
from (
  select g, h1, h2, h1 %% 12 as f, 1 + ((h1 %% 12) + h2 %% 3) %% 5 as m,
         200 + h1 %% 3000 as inp, 20 + h2 %% 800 as outp,
         case when h1 %% 5 = 0 then (h1 %% 3000) / 2 else 0 end as cached,
         (150 + (h2 %% 1000) * (1 + h1 %% 7))::integer as latency,
         ((h1 %% 23 = 0)::integer * (h2 %% 3))::integer as retries,
         case when h2 %% 50 = 0 then 'error' when h2 %% 211 = 0 then 'timeout'
              when h2 %% 307 = 0 then 'rate_limited' else 'success' end as status
  from (select g, (hashint8(g) & 2147483647)::bigint as h1, (hashint8(g + 7919) & 2147483647)::bigint as h2
        from generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) g) r
) x
"""

# The same aggregates the functions answer, straight from the raw rows (as the same signed-in user).
RAW_BREAKDOWN = """
select {dim}, sum(cost_usd) as total_cost, count(*) as total_requests,
       sum(input_tokens) as total_input_tokens, sum(output_tokens) as total_output_tokens
from public.usage_records
where org_id = %(org)s and occurred_at >= %(start)s and occurred_at < %(end)s
group by {dim}
"""
RAW_OVERVIEW = """
select date_trunc('day', occurred_at, 'UTC') as day, provider, team, feature, api_key_id, end_user_id,
       sum(cost_usd), count(*), count(*) filter (where status <> 'success')
from public.usage_records
where org_id = %(org)s and occurred_at >= %(prev_start)s and occurred_at < %(end)s
group by grouping sets ((1), (provider), (team), (feature), (api_key_id), (end_user_id))
"""


# The statements the overview function runs, in its own terms (this month so far, the same days of the last).
_MONTH = "date_trunc('month', now(), 'UTC')"
_NEXT_DAY = "date_trunc('day', now(), 'UTC') + interval '1 day'"
OVERVIEW_PARTS = {
    "public.dashboard_overview (all of it)": "select public.dashboard_overview(org => %(org)s)",
    "usage sums (days; providers, teams, features, keys)": (
        f"select * from private.usage_overview_sums({_MONTH} - interval '1 month', {_MONTH}, {_NEXT_DAY}, %(org)s)"
    ),
    "top end users of the month": (
        f"select * from private.end_user_summary({_MONTH}, {_MONTH} + interval '1 month', %(org)s, 5)"
    ),
    "open recommendations and alerts (counts)": (
        "select (select count(*) from public.recommendations r where r.status in ('open', 'under_review') "
        "and r.org_id = %(org)s), (select count(*) from public.alert_events a where a.status <> 'resolved' "
        "and a.org_id = %(org)s)"
    ),
}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50 {_percentile(values, 50) * 1000:8.2f} ms   p95 {_percentile(values, 95) * 1000:8.2f} ms"


def _fresh_database(base: str) -> str:
    dsn = make_conninfo(**{**conninfo_to_dict(base), "dbname": BENCH_DB})
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{BENCH_DB}" with (force)')
        conn.execute(f'create database "{BENCH_DB}"')
    migrate(dsn, log=lambda *_: None)
    return dsn


def _drop_database(base: str) -> None:
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{BENCH_DB}" with (force)')


def _load(
    conn: psycopg.Connection,
    org: uuid.UUID,
    rows: int,
    users: int,
    keys: list[uuid.UUID],
    start: datetime,
    prefix: str,
    chunks: int,
) -> None:
    span = timedelta(days=30)
    step = span / max(rows, 1)
    per = -(-rows // chunks)
    for lo in range(0, rows, per):
        hi = min(rows, lo + per)
        conn.execute(
            LOAD_SQL,
            {
                "org": org,
                "start": start + step * lo,
                "lo": lo,
                "hi": hi,
                "step": step,
                "prefix": prefix,
                "users": users,
                "keys": keys,
            },
        )
        conn.commit()


def _token(user_id: uuid.UUID) -> str:
    settings = get_settings()
    claims = {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": settings.supabase_jwt_audience,
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, settings.supabase_jwt_secret, algorithm="HS256")


def _time(fn: Callable[[], object], n: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _get(client: httpx.Client, url: str, **params) -> dict:
    r = client.get(url, params=params)
    if r.status_code != 200:
        raise RuntimeError(f"{url}: {r.status_code} {r.text[:300]}")
    return json.loads(r.text, parse_float=Decimal)


def _raw_as_user(dsn: str, user_id: uuid.UUID, sql: str, params: dict) -> list[dict]:
    with connect(dsn) as conn, conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user_id), "role": "authenticated"}),),
        )
        return conn.execute(sql, params).fetchall()


def _on_conn_as_user(conn: psycopg.Connection, user_id: uuid.UUID, sql: str, params: dict) -> list[dict]:
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user_id), "role": "authenticated"}),),
        )
        return conn.execute(sql, params).fetchall()


def _refresh_all(conn: psycopg.Connection) -> tuple[int, float]:
    steps, t0 = 0, time.perf_counter()
    while True:
        stats = conn.execute("select private.refresh_usage_rollups() as s").fetchone()["s"]
        conn.commit()
        steps += 1
        if stats.get("caught_up"):
            return steps, time.perf_counter() - t0


def _late_events(n: int, now: datetime) -> list[dict]:
    models = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-20250514")]
    out = []
    for i in range(n):
        provider, model = models[i % len(models)]
        at = now - timedelta(days=29) + timedelta(seconds=(i * 7919) % (29 * 86400 - 7200))
        out.append(
            {
                "request_id": f"late-{uuid.uuid4()}",
                "provider": provider,
                "model": model,
                "input_tokens": 500 + i % 1000,
                "output_tokens": 50 + i % 300,
                "latency_ms": 300 + i % 2000,
                "status": "success" if i % 40 else "error",
                "metadata": {
                    "feature": f"feature-{i % 12}",
                    "team": f"team-{i % 6}",
                    "user_id": f"user-{i % 97}",
                },
                "timestamp": at.isoformat(),
            }
        )
    return out


def _exact(rows_api: list[dict], rows_raw: list[dict], dim: str) -> bool:
    api = {r[dim]: (r["total_cost"], r["total_requests"]) for r in rows_api}
    raw = {r[dim]: (r["total_cost"] or Decimal(0), r["total_requests"]) for r in rows_raw}
    return api == raw


def _existing(dsn: str) -> tuple[uuid.UUID, uuid.UUID, list[admin.ApiKey]] | None:
    """The large organization, its owner and keys of a database an earlier run kept, else None."""
    try:
        with connect(dsn) as conn:
            migrate(dsn, log=lambda *_: None)  # migrations added since it was built
            org = conn.execute(
                "select o.id, m.user_id from public.organizations o join public.organization_members m "
                "on m.org_id = o.id and m.role = 'owner' where o.name = 'bench-large' "
                "order by o.created_at desc limit 1"
            ).fetchone()
            if org is None:
                return None
            keys = [admin.create_key(conn, org["id"], name="key-reuse")]
            conn.commit()
            return org["id"], org["user_id"], keys
    except psycopg.OperationalError:
        return None


def _build(dsn: str, rows: int, small_orgs: int) -> tuple[uuid.UUID, uuid.UUID, list[admin.ApiKey]]:
    with connect(dsn) as conn:
        # The load and the refresh keep one core busy for many minutes on a machine others time on.
        pid = conn.execute("select pg_backend_pid() as pid").fetchone()["pid"]
        _renice(pid)
        org = admin.create_org(conn, "bench-large")
        user = admin.create_user(conn, f"bench-{uuid.uuid4().hex[:8]}@example.com", org.id, "owner")
        keys = [admin.create_key(conn, org.id, name=f"key-{i}") for i in range(5)]
        small = [admin.create_org(conn, f"bench-small-{i}") for i in range(small_orgs)]
        small_keys = {o.id: admin.create_key(conn, o.id).id for o in small}
        conn.commit()
        start = datetime.now(UTC) - timedelta(days=30)

        t0 = time.perf_counter()
        _load(conn, org.id, rows, 2000, [k.id for k in keys], start, "b-", chunks=max(1, rows // 250_000))
        small_rows = max(1000, rows // 1000)
        for o in small:
            _load(conn, o.id, small_rows, 50, [small_keys[o.id]], start, "s-", chunks=1)
        loaded = rows + small_rows * small_orgs
        load_s = time.perf_counter() - t0
        conn.execute("analyze public.usage_records")
        conn.commit()
        console.print(
            f"load        {loaded:,} rows in {load_s:.1f} s ({loaded / load_s:,.0f} rows/s), "
            "INSERT ... SELECT generate_series into public.usage_records"
        )

        steps, refresh_s = _refresh_all(conn)
        conn.execute("commit")
        conn.autocommit = True
        conn.execute(
            "vacuum analyze private.usage_rollup_hourly, private.usage_rollup_daily, "
            "private.usage_rollup_deltas, private.end_user_rollup_daily, "
            "private.end_user_rollup_monthly, private.end_user_rollup_deltas"
        )
        counts = conn.execute(
            "select (select count(*) from private.usage_rollup_hourly) as hourly, "
            "(select count(*) from private.usage_rollup_daily) as daily, "
            "(select count(*) from private.end_user_rollup_daily) as end_user_daily"
        ).fetchone()
        conn.autocommit = False
        console.print(
            f"refresh     {steps} steps of at most 6 h in {refresh_s:.1f} s: "
            f"{counts['hourly']:,} hourly, "
            f"{counts['daily']:,} daily, {counts['end_user_daily']:,} end-user daily rows"
        )
    return org.id, user.id, keys


def _renice(pid: int) -> None:
    """Lowest CPU priority for a backend doing bulk work (a no-op where the server runs elsewhere)."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, 19)
    except OSError:
        pass


def run(  # noqa: C901
    rows: int, small_orgs: int, requests: int, raw_runs: int, late: int, keep: bool, reuse: bool = False
) -> None:
    base = get_settings().dsn
    dsn = make_conninfo(**{**conninfo_to_dict(base), "dbname": BENCH_DB})
    found = _existing(dsn) if reuse else None
    if found is not None:
        org_id, user_id, keys = found
        with connect(dsn) as conn:
            n = conn.execute("select count(*) as n from public.usage_records").fetchone()["n"]
        console.print(f"[bold]bench query[/bold]: reusing {BENCH_DB} ({n:,} usage rows; built by an earlier run)")
    else:
        console.print(
            f"[bold]bench query[/bold]: {rows:,} rows for one organization over 30 days, "
            f"{small_orgs} smaller organizations; database {BENCH_DB} (fresh)"
        )
        dsn = _fresh_database(base)
    proc = None
    try:
        if found is None:
            org_id, user_id, keys = _build(dsn, rows, small_orgs)
        proc, url = start_functions(54400, env={"DATABASE_URL": dsn})
        client = httpx.Client(headers={"Authorization": f"Bearer {_token(user_id)}"}, timeout=60)
        today = datetime.now(UTC).date()
        first = today - timedelta(days=29)
        window = {"start_date": first.isoformat(), "end_date": today.isoformat(), "org_id": str(org_id)}
        raw_window = {
            "org": org_id,
            "start": datetime.combine(first, datetime.min.time(), UTC),
            "end": datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC),
        }
        month_start = today.replace(day=1)
        prev_start = (month_start - timedelta(days=1)).replace(day=1)

        timed = {
            "overview": (
                lambda: _get(client, f"{url}/dashboard/overview", org_id=str(org_id)),
                lambda: _raw_as_user(
                    dsn,
                    user_id,
                    RAW_OVERVIEW,
                    {
                        "org": org_id,
                        "prev_start": datetime.combine(prev_start, datetime.min.time(), UTC),
                        "end": raw_window["end"],
                    },
                ),
            ),
            "costs by model, 30 days": (
                lambda: _get(client, f"{url}/costs", group_by="model", **window),
                lambda: _raw_as_user(dsn, user_id, RAW_BREAKDOWN.format(dim="model"), raw_window),
            ),
            "costs by feature, 30 days": (
                lambda: _get(client, f"{url}/costs", group_by="feature", **window),
                lambda: _raw_as_user(dsn, user_id, RAW_BREAKDOWN.format(dim="feature"), raw_window),
            ),
        }
        console.print(
            f"\n{'query':28} {'functions (HTTP, rollups)':36} {'raw rows (SQL, same user)':36} ratio"
        )
        for name, (fn, raw) in timed.items():
            api_t = _time(fn, requests)
            if raw_runs <= 0:
                console.print(f"{name:28} {_ms(api_t):36} {'(not run: --raw-runs 0)':36}")
                continue
            raw_t = _time(raw, raw_runs, warmup=1)
            ratio = _percentile(raw_t, 95) / _percentile(api_t, 95)
            console.print(f"{name:28} {_ms(api_t):36} {_ms(raw_t):36} {ratio:,.0f}x")

        # Where the overview's time goes: each statement it runs, alone, as the same user in SQL (no HTTP).
        console.print(f"\n{'overview, statement by statement (SQL, same user)':52} {'':36}")
        with connect(dsn) as conn:  # one connection, as a pooled server has: plans stay cached between calls
            for name, sql in OVERVIEW_PARTS.items():
                part_t = _time(lambda sql=sql: _on_conn_as_user(conn, user_id, sql, {"org": org_id}), requests // 2)
                console.print(f"  {name:50} {_ms(part_t)}")

        for dim in ("model", "feature"):
            api = _get(client, f"{url}/costs", group_by=dim, **window)["data"]
            raw = _raw_as_user(dsn, user_id, RAW_BREAKDOWN.format(dim=dim), raw_window)
            console.print(f"exact       costs by {dim} equal the raw aggregate: {_exact(api, raw, dim)}")

        # Freshness: from the ingest response to the first /costs answer that counts the event.
        key = keys[0].key
        waits = []
        for _ in range(20):
            model = f"fresh-{uuid.uuid4().hex[:8]}"
            event = {
                "request_id": str(uuid.uuid4()),
                "provider": "openai",
                "model": model,
                "input_tokens": 10,
                "output_tokens": 5,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            r = httpx.post(
                f"{url}/ingest", json={"events": [event]}, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
            t0 = time.perf_counter()
            day = datetime.now(UTC).date().isoformat()
            while not _get(client, f"{url}/costs", model=model, start_date=day, end_date=day)["data"]:
                if time.perf_counter() - t0 > 10:
                    break
            waits.append(time.perf_counter() - t0)
        console.print(
            f"\nfreshness   an ingested event shows in /costs after {_ms(waits)} (max "
            f"{max(waits) * 1000:.1f} ms, 20 events)"
        )

        # Late events: ingested through the function with timestamps spread over the past 29 days.
        events = _late_events(late, datetime.now(UTC))
        t0 = time.perf_counter()
        for i in range(0, len(events), 1000):
            r = httpx.post(
                f"{url}/ingest",
                json={"events": events[i : i + 1000]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            assert r.status_code == 200 and not r.json()["rejected"], r.text[:300]
        ingest_s = time.perf_counter() - t0
        with connect(dsn) as conn:
            pending = conn.execute("select count(*) as n from private.usage_rollup_deltas").fetchone()["n"]
            t0 = time.perf_counter()
            stats = conn.execute("select private.refresh_usage_rollups() as s").fetchone()["s"]
            conn.commit()
            late_s = time.perf_counter() - t0
        console.print(
            f"late        {late:,} events over the past 29 days ingested in {ingest_s:.1f} s "
            f"({pending:,} pending delta rows); the next refresh took {late_s * 1000:.0f} ms "
            f"({stats.get('hourly_rows_folded')} hourly rows folded; {json.dumps(stats.get('fold'))})"
        )
        for dim in ("model", "feature"):
            api = _get(client, f"{url}/costs", group_by=dim, **window)["data"]
            raw = _raw_as_user(dsn, user_id, RAW_BREAKDOWN.format(dim=dim), raw_window)
            console.print(
                f"exact       after the late events, costs by {dim} equal the raw aggregate: "
                f"{_exact(api, raw, dim)}"
            )
        client.close()
    finally:
        if proc is not None:
            stop_functions(proc)
        if keep or found is not None:
            console.print(f"kept database {BENCH_DB}")
        else:
            _drop_database(base)
