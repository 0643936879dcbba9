"""The read views find the raw rows past the watermark through an index: with nothing past it, reading
one organization's buckets, or every organization's, must not scan the day's usage. The planner once
guessed a third of the table for those rows (the watermark was a subquery it could not see into) and
scanned the day's partition on every read; for a large organization that was most of a day's calls."""

from __future__ import annotations

import uuid

import pytest


def scans(plan: dict) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in an EXPLAIN (FORMAT JSON) plan."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


def calls_just_folded(db) -> tuple[str, str]:
    """60,000 calls of a new organization in the seconds before now, all below the watermark, which is
    now: the organization, and the partition that holds both the calls and the watermark (so it is not
    pruned; it must be read by index)."""
    org = str(uuid.uuid4())
    db.execute("insert into public.organizations (id, name) values (%s, 'tail')", (org,))
    db.execute(
        "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced, "
        "end_user_id) select %s, greatest(now() - interval '1 millisecond' - make_interval(secs => i %% 5), "
        "date_trunc('day', now(), 'UTC')), 'r' || i, 'openai', 'gpt-4o', 0.01, true, 'u' || (i %% 7) "
        "from generate_series(1, 60000) i",
        (org,),
    )
    stats = db.execute("select private.refresh_usage_rollups(now(), null) as s").fetchone()["s"]
    assert "skipped" not in stats
    day = db.execute("select tableoid::regclass::text as t from public.usage_records where org_id = %s limit 1",
                     (org,)).fetchone()["t"]
    db.execute(f"analyze {day}")
    return org, day.split(".")[-1]


def seq_scanned(db, query: str, *params) -> list[str]:
    plan = db.execute(f"explain (format json) {query}", params).fetchone()
    return [rel for node, rel in scans(next(iter(plan.values()))[0]["Plan"]) if node.endswith("Seq Scan")]


@pytest.mark.parametrize("view", ["usage_hourly", "usage_daily", "end_user_daily", "end_user_monthly"])
def test_reading_the_views_does_not_scan_the_days_usage(db, view):
    org, day = calls_just_folded(db)
    seq = seq_scanned(db, f"select sum(requests) from analytics.{view} where org_id = %s", org)
    assert day not in seq, seq
    # and the sums are all there, read from the buckets
    total = db.execute(f"select sum(requests) as n from analytics.{view} where org_id = %s", (org,)).fetchone()
    assert total["n"] == 60000


def test_reading_every_organizations_hours_finds_the_rows_past_the_watermark_by_time(db):
    # Provider health reads every organization's last day of buckets each minute: the rows past the
    # watermark are found by time (BRIN), not by walking an index or the partition whole.
    _, day = calls_just_folded(db)
    plan = db.execute("explain (format json) select sum(requests) from analytics.usage_hourly "
                      "where bucket >= now() - interval '2 days'").fetchone()
    on_day = [node for node, rel in scans(next(iter(plan.values()))[0]["Plan"]) if rel == day]
    assert on_day == ["Bitmap Heap Scan"], on_day
