"""Spend-spike, error-rate and latency rules: one event when the condition starts to hold, none while
it stays open, resolved when the condition clears. Time is set by back-dating rows, never by sleeping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from metric_rule_helpers import an_hour_ago_plus, evaluate, org_with_rule, rule_events


def calls(
    db, org: str, at: datetime, n: int, cost: str = "0.01", status: str = "success", latency: int = 100
):
    db.execute(
        "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, "
        "priced, status, latency_ms) select %s, %s, %s || i, 'openai', 'gpt-4o', %s, true, %s, %s "
        "from generate_series(1, %s) i",
        (org, at, str(uuid.uuid4()), cost, status, latency, n),
    )


def steady_day(db, org: str, at: datetime) -> None:
    for h in range(1, 25):  # a steady $0.50 an hour for the day before
        calls(db, org, at - timedelta(hours=h), 5, cost="0.10")


def test_spend_spike_raises_once_and_resolves_when_spend_calms(db):
    at = an_hour_ago_plus(1800)
    org, rule = org_with_rule(db, "spend_spike", {"window_minutes": 60, "factor": 3, "min_spend_usd": 1})
    steady_day(db, org, at)
    evaluate(db, at)
    assert rule_events(db, rule) == []
    calls(db, org, at - timedelta(minutes=1), 40, cost="0.10")  # $4 in the last hour: 8x the usual
    evaluate(db, at)
    evaluate(db, at)
    (event,) = rule_events(db, rule)
    assert event["status"] == "open" and "spent in the window" in event["title"]
    evaluate(db, at + timedelta(hours=2))  # two hours later the spike is out of the window
    assert [e["status"] for e in rule_events(db, rule)] == ["resolved"]


@pytest.mark.parametrize("seconds_past_the_hour", [0, 30, 600, 3599])
def test_a_spike_a_minute_ago_counts_wherever_the_hour_stands(db, seconds_past_the_hour):
    # The window is the last window_minutes, not the hour so far: just past HH:00 the spike of a minute
    # before belongs to the previous hour's rollup and must still count.
    at = an_hour_ago_plus(seconds_past_the_hour)
    org, rule = org_with_rule(db, "spend_spike", {"window_minutes": 60, "factor": 3, "min_spend_usd": 1})
    steady_day(db, org, at)
    calls(db, org, at - timedelta(minutes=1), 40, cost="0.10")
    evaluate(db, at)
    (event,) = rule_events(db, rule)
    assert event["status"] == "open"
    assert 4 <= float(event["details"]["value"]) <= 4.5  # the spike, and at most an hour of the steady spend
    assert 0.45 <= float(event["details"]["baseline"]) <= 0.55


def test_an_open_spike_stays_open_across_the_turn_of_the_hour(db):
    at = an_hour_ago_plus(0) - timedelta(minutes=5)  # HH:55 of the hour before the last whole one
    org, rule = org_with_rule(db, "spend_spike", {"window_minutes": 60, "factor": 3, "min_spend_usd": 1})
    steady_day(db, org, at)
    calls(db, org, at - timedelta(minutes=5), 40, cost="0.10")  # $4 at HH:50
    evaluate(db, at)
    assert [e["status"] for e in rule_events(db, rule)] == ["open"]
    evaluate(db, at + timedelta(minutes=10))  # HH+1:05: the spike was 15 minutes ago
    assert [e["status"] for e in rule_events(db, rule)] == ["open"]
    evaluate(db, at + timedelta(minutes=70))  # HH+2:05: 75 minutes ago, out of the window
    assert [e["status"] for e in rule_events(db, rule)] == ["resolved"]


def test_error_rate_needs_enough_requests_and_the_threshold(db):
    now = datetime.now(UTC)
    org, rule = org_with_rule(
        db, "error_rate", {"window_minutes": 15, "threshold_pct": 20, "min_requests": 50}
    )
    calls(db, org, now, 10, status="error")
    evaluate(db, now)
    assert rule_events(db, rule) == []  # 10 requests: too few to judge
    calls(db, org, now, 30)
    calls(db, org, now, 20, status="error")
    evaluate(db, now)
    (event,) = rule_events(db, rule)
    assert event["details"]["requests"] == 60 and float(event["details"]["value"]) == 50.0


def test_latency_percentile_over_the_threshold(db):
    now = datetime.now(UTC)
    org, rule = org_with_rule(
        db, "latency", {"percentile": 95, "threshold_ms": 2000, "min_requests": 20, "severity": "critical"}
    )
    calls(db, org, now, 90, latency=300)
    calls(db, org, now, 10, latency=9000)
    evaluate(db, now)
    (event,) = rule_events(db, rule)
    assert event["severity"] == "critical" and float(event["details"]["value"]) > 2000
