"""The rollups equal raw aggregates exactly, whatever happens: random inserts, late events, re-pricing,
deletes and refreshes in any order (property-based), and writers racing the refresh (threads).

Both run in a scratch database of their own: a refresh holds the rollup lock exclusively, which must
not stall the shared database's ingest while hypothesis explores."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokentra_core.db import connect
from tokentra_core.migrations import migrate

DIMS = "org_id, team, project, provider, model, feature, api_key_id, status"
SUMS = """count(*) as requests, count(*) filter (where status <> 'success') as errors,
          count(*) filter (where is_timeout) as timeouts,
          count(*) filter (where is_rate_limited) as rate_limited,
          coalesce(sum(retry_count), 0) as retries, count(*) filter (where cache_hit) as cache_hits,
          count(*) filter (where not priced) as unpriced, sum(input_tokens) as input_tokens,
          sum(output_tokens) as output_tokens, sum(cached_tokens) as cached_tokens,
          coalesce(sum(cost_usd), 0) as cost_usd, count(latency_ms) as latency_count,
          coalesce(sum(latency_ms), 0) as latency_sum_ms"""
VIEW_SUMS = """requests, errors, timeouts, rate_limited, retries, cache_hits, unpriced, input_tokens,
               output_tokens,
               cached_tokens, cost_usd, latency_count, latency_sum_ms"""


def _rows(conn: psycopg.Connection, sql: str) -> Counter:
    # A multiset of whole rows: order-free, NULL dimensions compare equal, Decimals exactly.
    return Counter(tuple(r.values()) for r in conn.execute(sql).fetchall())


def assert_rollups_equal_raw(conn: psycopg.Connection) -> None:
    for grain, view in (("hour", "usage_hourly"), ("day", "usage_daily")):
        expected = _rows(
            conn,
            f"select date_trunc('{grain}', occurred_at, 'UTC') as bucket, {DIMS}, {SUMS} "
            f"from public.usage_records group by bucket, {DIMS}",
        )
        assert _rows(conn, f"select bucket, {DIMS}, {VIEW_SUMS} from analytics.{view}") == expected, view
    for grain, view in (("day", "end_user_daily"), ("month", "end_user_monthly")):
        expected = _rows(
            conn,
            f"select date_trunc('{grain}', occurred_at, 'UTC'), org_id, end_user_id, count(*), "
            "sum(input_tokens), coalesce(sum(cost_usd), 0) from public.usage_records "
            "where end_user_id is not null group by 1, 2, 3",
        )
        assert (
            _rows(
                conn,
                f"select bucket, org_id, end_user_id, requests, input_tokens, cost_usd from analytics.{view}",
            )
            == expected
        ), view
    # latency histograms: per organization and model, the same count in every slot
    expected = _rows(
        conn,
        "select org_id, model, analytics.latency_slot(latency_ms), count(*) from "
        "public.usage_records where latency_ms is not null group by 1, 2, 3",
    )
    assert (
        _rows(
            conn,
            "select h.org_id, h.model, c.slot, c.requests from (select org_id, model, "
            "analytics.merge_latency(latency_histogram) as hist from analytics.usage_daily group by 1, 2) h "
            "cross join lateral analytics.latency_slot_counts(h.hist) c",
        )
        == expected
    )
    # and the query functions' own path over the same range (whole days of the test's window)
    expected = _rows(
        conn, "select model, count(*), coalesce(sum(cost_usd), 0) from public.usage_records group by model"
    )
    assert (
        _rows(
            conn,
            "select model, requests, cost_usd from private.usage_summary("
            "timestamptz '2000-01-01', timestamptz '2100-01-01', 'total', array['model'])",
        )
        == expected
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> str:
    """A migrated scratch database for this module (no pg_cron: nothing refreshes behind the test's back)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from tokentra_core.settings import get_settings

    base = get_settings().dsn
    name = f"tokentra_scratch_rollups_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    dsn = make_conninfo(**{**conninfo_to_dict(base), "dbname": name})
    migrate(dsn, log=lambda *_: None)
    with connect(dsn) as conn:
        for tag in ("a", "b"):
            conn.execute(
                "insert into public.organizations (id, name) values (%s, %s)", (ORGS[tag], f"org-{tag}")
            )
        conn.commit()
    yield dsn
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'drop database "{name}" with (force)')


ORGS = {"a": uuid.UUID(int=0xA), "b": uuid.UUID(int=0xB)}
# Whole hours three to six days back: inside the premade day partitions, clear of "now".
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=6)
SPAN = 3 * 24 * 60  # minutes

rows = st.lists(
    st.fixed_dictionaries(
        {
            "org": st.sampled_from(["a", "b"]),
            "minute": st.integers(0, SPAN),
            "model": st.sampled_from(["m1", "m2", "m3"]),
            "team": st.sampled_from([None, "t1", "t2"]),
            "feature": st.sampled_from([None, "f1"]),
            "status": st.sampled_from(["success", "error", "timeout", "rate_limited"]),
            "input": st.integers(0, 10**7),
            "output": st.integers(0, 10**6),
            "cost": st.one_of(
                st.none(), st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False)
            ),
            "latency": st.one_of(st.none(), st.integers(0, 3_000_000)),
            "retries": st.integers(0, 3),
            "user": st.sampled_from([None, "u1", "u2"]),
        }
    ),
    min_size=1,
    max_size=8,
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), rows),
        st.tuples(st.just("refresh"), st.integers(0, SPAN + 60), st.sampled_from([None, 30, 600])),
        st.tuples(st.just("reprice"), st.sampled_from(["m1", "m2", "m3"])),
        st.tuples(st.just("delete"), st.sampled_from(["m1", "m2", "m3"]), st.sampled_from([None, "t1"])),
    ),
    min_size=1,
    max_size=14,
)


def insert(conn: psycopg.Connection, batch: list[dict]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, "
            "feature, "
            "status, is_timeout, is_rate_limited, input_tokens, output_tokens, cost_usd, priced, latency_ms, "
            "retry_count, end_user_id) "
            "values (%s, %s, %s, 'p', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    ORGS[r["org"]],
                    BASE + timedelta(minutes=r["minute"]),
                    str(uuid.uuid4()),
                    r["model"],
                    r["team"],
                    r["feature"],
                    r["status"],
                    r["status"] == "timeout",
                    r["status"] == "rate_limited",
                    r["input"],
                    r["output"],
                    r["cost"],
                    r["cost"] is not None,
                    r["latency"],
                    r["retries"],
                    r["user"],
                )
                for r in batch
            ],
        )


def apply(conn: psycopg.Connection, op: tuple) -> None:
    if op[0] == "insert":
        insert(conn, op[1])
    elif op[0] == "refresh":
        window = None if op[2] is None else timedelta(minutes=op[2])
        stats = conn.execute(
            "select private.refresh_usage_rollups(%s, %s) as s", (BASE + timedelta(minutes=op[1]), window)
        ).fetchone()["s"]
        assert "skipped" not in stats, stats
    elif op[0] == "reprice":  # an update below the watermark must move its bucket's sums
        conn.execute(
            "update public.usage_records set cost_usd = cost_usd * 3 + 0.000000000001, priced = true "
            "where model = %s",
            (op[1],),
        )
    else:
        conn.execute(
            "delete from public.usage_records where model = %s and team is not distinct from %s",
            (op[1], op[2]),
        )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_rollup_reads_equal_raw_aggregates_after_any_history(scratch, ops):
    with connect(scratch) as conn:
        try:
            for op in ops:
                apply(conn, op)
                # exact at every step, not only at the end: reads never wait for a refresh
                assert_rollups_equal_raw(conn)
            conn.execute(
                "select private.refresh_usage_rollups(%s, null)", (BASE + timedelta(minutes=SPAN + 60),)
            )
            assert_rollups_equal_raw(conn)
        finally:
            conn.rollback()


def _random_batch(rnd: random.Random, now: datetime) -> list[dict]:
    # some calls now, some hours late: both sides of a moving watermark
    return [
        {
            "org": rnd.choice("ab"),
            "minute": (now - timedelta(seconds=rnd.randint(0, 6 * 3600)) - BASE) / timedelta(minutes=1),
            "model": rnd.choice(["m1", "m2"]),
            "team": rnd.choice([None, "t1"]),
            "feature": None,
            "status": "success",
            "input": rnd.randint(1, 1000),
            "output": 1,
            "cost": Decimal(rnd.randint(1, 10**6)) / 10**9,
            "latency": rnd.randint(1, 5000),
            "retries": 0,
            "user": rnd.choice([None, "u1"]),
        }
        for _ in range(rnd.randint(1, 10))
    ]


def _write(dsn: str, seed: int, now: datetime, errors: list[BaseException]) -> None:
    rnd = random.Random(seed)
    try:
        with connect(dsn, autocommit=True) as conn:
            for i in range(40):
                with conn.transaction():
                    insert(conn, _random_batch(rnd, now))
                if i % 10 == 9:
                    conn.execute(
                        "update public.usage_records set cost_usd = cost_usd + 1 where request_id in "
                        "(select request_id from public.usage_records order by random() limit 5)"
                    )
                if i % 15 == 14:
                    conn.execute(
                        "delete from public.usage_records where request_id in "
                        "(select request_id from public.usage_records order by random() limit 3)"
                    )
    except BaseException as exc:  # noqa: BLE001 - surfaced by the test
        errors.append(exc)


def _refresh(dsn: str, stop: threading.Event, refreshes: Counter, errors: list[BaseException]) -> None:
    try:
        with connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                stats = conn.execute(
                    "select private.refresh_usage_rollups(null, interval '20 minutes') as s"
                ).fetchone()["s"]
                refreshes["skipped" if "skipped" in stats else "ran"] += 1
    except BaseException as exc:  # noqa: BLE001
        errors.append(exc)


def test_writers_racing_the_refresh_lose_nothing(scratch):
    """Committed writers (inserts, late inserts, updates, deletes) while refreshes run back to back."""
    now = datetime.now(UTC)
    stop = threading.Event()
    errors: list[BaseException] = []
    refreshes: Counter = Counter()
    with connect(scratch, autocommit=True) as conn:  # start from a watermark six hours back
        conn.execute("update private.usage_rollup_state set watermark = %s", (now - timedelta(hours=6),))
    writers = [threading.Thread(target=_write, args=(scratch, seed, now, errors)) for seed in range(4)]
    r = threading.Thread(target=_refresh, args=(scratch, stop, refreshes, errors))
    r.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    r.join()
    assert not errors, errors
    assert refreshes["ran"] > 3, refreshes
    with connect(scratch) as conn:
        while (
            not conn.execute("select private.refresh_usage_rollups() as s").fetchone()["s"].get("caught_up")
        ):
            pass
        conn.commit()
        assert conn.execute("select count(*) as n from private.usage_rollup_deltas").fetchone()["n"] == 0
        assert_rollups_equal_raw(conn)
        conn.rollback()


def test_a_refresh_skips_rather_than_queue_behind_a_long_writer(scratch):
    with connect(scratch) as writer, connect(scratch, autocommit=True) as other:
        insert(
            writer,
            [
                {
                    "org": "a",
                    "minute": 10,
                    "model": "m1",
                    "team": None,
                    "feature": None,
                    "status": "success",
                    "input": 1,
                    "output": 1,
                    "cost": None,
                    "latency": None,
                    "retries": 0,
                    "user": None,
                }
            ],
        )
        stats = other.execute("select private.refresh_usage_rollups() as s").fetchone()["s"]
        assert "skipped" in stats
        writer.rollback()
        assert "skipped" not in other.execute("select private.refresh_usage_rollups() as s").fetchone()["s"]


def test_the_worker_runs_the_refresh_where_pg_cron_is_absent(scratch):
    with connect(scratch, autocommit=True) as conn:
        assert not conn.execute(
            "select exists(select 1 from pg_extension where extname = 'pg_cron') as c"
        ).fetchone()["c"]
        before = conn.execute("select watermark from private.usage_rollup_state").fetchone()["watermark"]
        assert (
            conn.execute("select private.run_periodic_job('tokentra-usage-rollups', 'test') as r").fetchone()[
                "r"
            ]
            == "ok"
        )
        after = conn.execute("select watermark, last_refresh from private.usage_rollup_state").fetchone()
        assert after["watermark"] > before and after["last_refresh"]["caught_up"]
