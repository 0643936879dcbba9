"""The read views find the raw rows past the watermark through an index: with nothing past it, reading
one organization's buckets, or every organization's, must not scan the day's usage. The planner once
guessed a third of the table for those rows (the watermark was a subquery it could not see into) and
scanned the day's partition on every read; for a large organization that was most of a day's calls.

Plans depend on the statistics of the partition read, so these run in a database of their own, whose
day holds only calls stored in the order they happened, as ingest stores them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tokentra_core.db import connect
from tokentra_dev import testdb

ORG = str(uuid.UUID(int=0x7A11))
# Enough for the planner to price a walk of the primary-key index above the BRIN scan, as at scale.
CALLS = 300_000


@pytest.fixture(scope="module")
def day_db(dsn: str) -> Iterator[tuple[str, str]]:
    """A cloned test database holding CALLS calls of ORG in the minutes before now, all below the
    watermark, which is now: its DSN, and the partition that holds both the calls and the watermark (so
    it is not pruned: it must be read by index)."""
    from tokentra_dev.pooler import direct

    server = direct(dsn)
    if not testdb.can_create_databases(server):
        pytest.skip("the tests' role may not create databases here")
    own = testdb.create(server)
    try:
        with psycopg.connect(own, autocommit=True) as conn:
            conn.execute("insert into public.organizations (id, name) values (%s, 'tail')", (ORG,))
            # In time order, as ingest stores them; never before the day began, whatever the time of the run.
            conn.execute(
                "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, "
                "priced, end_user_id) select %s, greatest(now() - interval '1 millisecond' "
                "- make_interval(secs => (%s - i) / 1000.0), date_trunc('day', now(), 'UTC')), 'r' || i, "
                "'openai', 'gpt-4o', 0.01, true, 'u' || (i %% 7) from generate_series(1, %s) i",
                (ORG, CALLS, CALLS),
            )
            stats = conn.execute("select private.refresh_usage_rollups(now(), null)").fetchone()
            assert stats and "skipped" not in stats[0]
            day = conn.execute("select tableoid::regclass::text from public.usage_records limit 1").fetchone()
            assert day
            conn.execute(f"vacuum analyze {day[0]}")
        yield own, day[0].split(".")[-1]
    finally:
        testdb.drop(own)


def scans(plan: dict) -> list[tuple[str, str, float]]:
    """(node type, relation, estimated rows) of every scan in an EXPLAIN (FORMAT JSON) plan."""
    found = []
    if "Scan" in plan["Node Type"]:
        found.append((plan["Node Type"], plan.get("Relation Name", ""), plan["Plan Rows"]))
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


def plan_scans(dsn: str, query: str, *params) -> list[tuple[str, str, float]]:
    with connect(dsn) as conn:
        plan = conn.execute(f"explain (format json) {query}", params).fetchone()
        return scans(next(iter(plan.values()))[0]["Plan"])


@pytest.mark.parametrize("view", ["usage_hourly", "usage_daily", "end_user_daily", "end_user_monthly"])
def test_reading_an_organizations_buckets_does_not_scan_the_days_usage(day_db, view):
    own, day = day_db
    query = f"select sum(requests) from analytics.{view} where org_id = %s"
    on_day = [(node, rows) for node, rel, rows in plan_scans(own, query, ORG) if rel == day]
    # The planner knows how few rows are past the watermark (it guessed a third of the table), and
    # does not scan the partition for them.
    assert on_day and all(rows < CALLS / 100 and not node.endswith("Seq Scan") for node, rows in on_day), on_day
    # and the sums are all there, read from the buckets
    with connect(own) as conn:
        assert conn.execute(query, (ORG,)).fetchone()["sum"] == CALLS


def test_reading_every_organizations_hours_finds_the_rows_past_the_watermark_by_time(day_db):
    # Provider health reads every organization's last day of buckets each minute: the rows past the
    # watermark are found by time (BRIN), not by walking an index or the partition whole.
    own, day = day_db
    on_day = [node for node, rel, _ in plan_scans(
        own, "select sum(requests) from analytics.usage_hourly where bucket >= now() - interval '2 days'")
        if rel == day]
    assert on_day == ["Bitmap Heap Scan"], on_day
