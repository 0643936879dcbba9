"""Metric rules measure their window to the minute, wherever the hour stands and whatever the rollups
have folded: steady spend never looks like a spike to a short window, a burst in the last minutes is not
diluted by the rest of the hour, and the measure equals the raw rows of the window exactly, through
refreshes, late rows, re-pricing and deletes (randomised).

Each test runs in the shared database's rolled-back transaction; refreshing there holds the rollup lock
only for the test's short transaction (tests run one at a time)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta

import pytest
from metric_rule_helpers import an_hour_ago_plus, evaluate, org_with_rule, rule_events


def per_minute(db, org: str, start: datetime, minutes: int, n: int = 1, cost: str = "0.02",
               status: str = "success", latency: int = 300) -> None:
    """n calls in every minute of [start, start + minutes), 30 s into each."""
    db.execute(
        "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced, "
        "status, latency_ms) select %s, %s + make_interval(secs => 60 * m + 30), %s || m || '-' || i, "
        "'openai', 'gpt-4o', %s, true, %s, %s from generate_series(0, %s - 1) m, generate_series(1, %s) i",
        (org, start, str(uuid.uuid4()), cost, status, latency, minutes, n),
    )


def refresh(db, up_to: datetime) -> None:
    stats = db.execute("select private.refresh_usage_rollups(%s, null) as s", (up_to,)).fetchone()["s"]
    assert "skipped" not in stats, stats


def measure(db, rule: str, at: datetime) -> dict:
    return db.execute("select * from private.alert_rule_measure((select r from public.alert_rules r "
                      "where r.id = %s), %s)", (rule, at)).fetchone()


# Past the first quarter of an hour a 15-minute window used to read the whole hour so far.
OFFSETS = [0, 420, 1800, 3000, 3540]


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "folded"])
@pytest.mark.parametrize("seconds_past_the_hour", OFFSETS)
def test_steady_spend_is_no_spike_to_a_short_window(db, seconds_past_the_hour, refreshed):
    at = an_hour_ago_plus(seconds_past_the_hour)
    org, rule = org_with_rule(db, "spend_spike", {"window_minutes": 15, "factor": 2, "min_spend_usd": 0.1})
    per_minute(db, org, at - timedelta(hours=25), 25 * 60)  # $0.02 a minute: $0.30 per 15 minutes
    if refreshed:
        refresh(db, at - timedelta(minutes=2))
    evaluate(db, at)
    assert rule_events(db, rule) == []
    measured = measure(db, rule, at)
    assert 0.28 <= float(measured["value"]) <= 0.34 and 0.28 <= float(measured["baseline"]) <= 0.32
    per_minute(db, org, at - timedelta(minutes=5), 5, cost="0.20")  # $1 more in the last five minutes
    evaluate(db, at)
    (event,) = rule_events(db, rule)
    assert event["status"] == "open" and 1.28 <= float(event["details"]["value"]) <= 1.34


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "folded"])
@pytest.mark.parametrize("seconds_past_the_hour", OFFSETS)
def test_an_error_burst_in_the_last_minutes_is_not_diluted(db, seconds_past_the_hour, refreshed):
    at = an_hour_ago_plus(seconds_past_the_hour)
    org, rule = org_with_rule(db, "error_rate", {"window_minutes": 15, "threshold_pct": 20, "min_requests": 50})
    per_minute(db, org, at - timedelta(hours=2), 120, n=4)
    per_minute(db, org, at - timedelta(minutes=5), 5, n=4, status="error")  # 20 failures of 80 calls: 25%
    if refreshed:
        refresh(db, at - timedelta(minutes=3))
    evaluate(db, at)
    (event,) = rule_events(db, rule)
    assert event["details"]["requests"] == 80 and float(event["details"]["value"]) == 25.0


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "folded"])
@pytest.mark.parametrize("seconds_past_the_hour", OFFSETS)
def test_a_latency_burst_in_the_last_minutes_is_not_diluted(db, seconds_past_the_hour, refreshed):
    at = an_hour_ago_plus(seconds_past_the_hour)
    org, rule = org_with_rule(db, "latency", {"window_minutes": 15, "threshold_ms": 5000, "min_requests": 20})
    per_minute(db, org, at - timedelta(hours=2), 120, n=4)
    per_minute(db, org, at - timedelta(minutes=2), 2, n=4, latency=9000)  # 8 slow calls of 68: over 5%
    if refreshed:
        refresh(db, at - timedelta(minutes=1))
    evaluate(db, at)
    (event,) = rule_events(db, rule)
    assert event["details"]["requests"] == 68 and float(event["details"]["value"]) > 5000


@pytest.mark.parametrize("refreshed", [False, True], ids=["raw", "folded"])
def test_a_window_longer_than_the_minutes_kept_reads_hours_before_them(db, refreshed):
    # Minutes are kept for three hours; a four-hour window reads its first hour or so from hourly
    # buckets, in proportion, and the rest to the minute.
    now = db.execute("select now() as t").fetchone()["t"]
    org, rule = org_with_rule(db, "spend_spike", {"window_minutes": 240, "min_spend_usd": 0.1})
    per_minute(db, org, now - timedelta(hours=30), 30 * 60)  # $0.02 a minute
    if refreshed:
        refresh(db, now - timedelta(minutes=2))
    measured = measure(db, rule, now)
    assert 4.76 <= float(measured["value"]) <= 4.84  # 240 minutes of $0.02
    assert 4.76 <= float(measured["baseline"]) <= 4.84
    assert 238 <= measured["requests"] <= 242


# ---------------------------------------------------------------- exactness, randomised
MODELS = ["m1", "m2", "m3"]
TEAMS = [None, "t1", "t2"]
FEATURES = [None, "f1"]


def random_rows(rng: random.Random, org: str, now: datetime, n: int) -> list[tuple]:
    rows = []
    for _ in range(n):
        status = rng.choice(["success", "success", "success", "error", "timeout", "rate_limited"])
        cost = None if rng.random() < 0.1 else round(rng.uniform(0, 3), rng.choice([2, 6, 12]))
        latency = None if rng.random() < 0.1 else int(rng.lognormvariate(6, 1.5))
        at = now - timedelta(seconds=rng.uniform(0, 170 * 60))
        rows.append((org, at, uuid.uuid4().hex, rng.choice(MODELS), rng.choice(TEAMS), rng.choice(FEATURES),
                     status, cost, cost is not None, latency))
    return rows


def insert(db, rows: list[tuple]) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, feature, "
            "status, cost_usd, priced, latency_ms) values (%s, %s, %s, 'openai', %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def raw_measure(db, org: str, kind: str, condition: dict, at: datetime) -> dict:
    """The rule's value straight from the raw rows of [start of the minute at - window falls in, at]."""
    filters = "".join(f" and {dim} = %({dim})s" for dim in ("model", "team", "feature") if dim in condition)
    value = {
        "spend_spike": "round(coalesce(sum(cost_usd), 0), 6)",
        "error_rate": "round(100.0 * count(*) filter (where status <> 'success') / nullif(count(*), 0), 4)",
        "latency": "analytics.latency_percentile(analytics.latency_histogram(latency_ms), "
                   "%(percentile)s / 100.0)::numeric",
    }[kind]
    return db.execute(
        f"select {value} as value, count(*) as requests from public.usage_records "
        "where org_id = %(org)s and occurred_at <= %(at)s and occurred_at >= date_bin('1 minute', "
        "%(at)s - make_interval(mins => %(window_minutes)s), timestamptz '2000-01-01 00:00:00+00')" + filters,
        {"org": org, "at": at, **condition, "percentile": condition.get("percentile", 95)},
    ).fetchone()


@pytest.mark.parametrize("seed", [11, 23, 37, 41, 58, 60, 72, random.randrange(10**6)])
def test_measure_equals_the_raw_rows_of_the_window(db, seed):
    rng = random.Random(seed)
    now = db.execute("select now() as t").fetchone()["t"]
    org = str(uuid.uuid4())
    db.execute("insert into public.organizations (id, name) values (%s, 'minutes')", (org,))
    steps = [rng.choice(["insert", "insert", "refresh", "reprice", "delete"]) for _ in range(rng.randint(2, 8))]
    steps.insert(rng.randint(0, len(steps)), "refresh")  # at least one refresh, anywhere after the first rows
    insert(db, random_rows(rng, org, now, rng.randint(40, 120)))
    for step in steps:
        if step == "insert":
            insert(db, random_rows(rng, org, now, rng.randint(1, 120)))
        elif step == "refresh":
            refresh(db, now - timedelta(minutes=rng.uniform(0, 120)))
        elif step == "reprice":  # a re-pricing below the watermark moves the minutes' sums too
            db.execute("update public.usage_records set cost_usd = coalesce(cost_usd, 0) * 2 + 0.000001, "
                       "priced = true where org_id = %s and model = %s", (org, rng.choice(MODELS)))
        else:
            db.execute("delete from public.usage_records where org_id = %s and model = %s and team is not "
                       "distinct from %s", (org, rng.choice(MODELS), rng.choice(TEAMS)))
    checked = 0
    for _ in range(12):
        kind = rng.choice(["spend_spike", "error_rate", "latency"])
        condition: dict = {"window_minutes": rng.randint(1, 110)}
        for dim, values in (("model", MODELS), ("team", TEAMS[1:]), ("feature", FEATURES[1:])):
            if rng.random() < 0.3:
                condition[dim] = rng.choice(values)
        if kind == "latency":
            condition["percentile"] = rng.choice([50, 95, 99])
        at = now - timedelta(seconds=rng.uniform(0, 60 * 60))
        rule = db.execute(
            "insert into public.alert_rules (org_id, name, type, condition, enabled) values (%s, 'r', %s, %s, "
            "false) returning id", (org, kind, json.dumps(condition)),
        ).fetchone()["id"]
        measured = measure(db, rule, at)
        expected = raw_measure(db, org, kind, condition, at)
        assert (measured["value"], measured["requests"]) == (expected["value"], expected["requests"]), (
            seed, kind, condition, at)
        checked += expected["requests"] > 0
    folded = db.execute("select count(*) as n from private.usage_minutes where org_id = %s", (org,)).fetchone()
    assert checked > 0 and folded["n"] > 0  # both paths were measured: minute sums and raw rows
