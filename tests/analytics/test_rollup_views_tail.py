"""The read views find the raw rows past the watermark through the index: with nothing past it, reading
one organization's buckets must not scan the day's usage. The planner once guessed a third of the table
for those rows (the watermark was a subquery it could not see into) and scanned the day's partition on
every read; for a large organization that was most of a day's calls each time."""

from __future__ import annotations

import uuid

import pytest


def scans(plan: dict) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in an EXPLAIN (FORMAT JSON) plan."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


@pytest.mark.parametrize("view", ["usage_hourly", "usage_daily", "end_user_daily", "end_user_monthly"])
def test_reading_the_views_does_not_scan_the_days_usage(db, view):
    org = str(uuid.uuid4())
    db.execute("insert into public.organizations (id, name) values (%s, 'tail')", (org,))
    # Yesterday around noon: one day's partition whatever the time of the run.
    db.execute(
        "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced, "
        "end_user_id) select %s, date_trunc('day', now(), 'UTC') - make_interval(hours => 12, secs => i %% 3000), "
        "'r' || i, 'openai', 'gpt-4o', 0.01, true, 'u' || (i %% 7) from generate_series(1, 60000) i",
        (org,),
    )
    stats = db.execute("select private.refresh_usage_rollups(now(), null) as s").fetchone()["s"]
    assert "skipped" not in stats
    day = db.execute("select tableoid::regclass::text as t from public.usage_records where org_id = %s "
                     "order by occurred_at desc limit 1", (org,)).fetchone()["t"]
    db.execute(f"analyze {day}")
    plan = db.execute(
        f"explain (format json) select sum(requests) from analytics.{view} where org_id = %s", (org,)
    ).fetchone()
    seq = [rel for node, rel in scans(next(iter(plan.values()))[0]["Plan"]) if node.endswith("Seq Scan")]
    assert day.split(".")[-1] not in seq, seq
    # and the sums are all there, read from the buckets
    total = db.execute(f"select sum(requests) as n from analytics.{view} where org_id = %s", (org,)).fetchone()
    assert total["n"] == 60000
