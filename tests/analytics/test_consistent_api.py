"""One API: every answer in {"data", "meta"}, money as JSON numbers, costs by end user, series without
holes, 403 for what a role may not read, and every bad field named at once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from analytics_fixtures import event, exact, get, ingest, raw, traffic


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_costs_by_end_user_group_and_filter_equal_raw(functions_url, dsn, org_a):
    rng = random.Random()
    users = [f"eu-{rng.randrange(10**6)}-{i}" for i in range(rng.randint(3, 7))]
    events = [event(datetime.now(UTC) - timedelta(minutes=rng.randrange(2 * 24 * 60)), model="gpt-4o",
                    input_tokens=rng.randint(300, 5000), output_tokens=rng.randint(1, 900),
                    metadata={"user_id": rng.choice(users), "team": rng.choice(["t1", "t2"])})
              for _ in range(rng.randint(20, 80))]
    ingest(functions_url, org_a, events)
    start, end = today() - timedelta(days=2), today() + timedelta(days=1)
    params = {"start_date": start.date().isoformat(), "end_date": today().date().isoformat()}
    r = get(functions_url, "/costs", org_a.tokens["viewer"], group_by="end_user_id", **params)
    assert r.status_code == 200, r.text
    body = exact(r)
    got = {row["end_user_id"]: (row["total_cost"], row["total_requests"]) for row in body["data"]
           if row["end_user_id"] in users}
    expected = raw(dsn, """select end_user_id, sum(cost_usd) as cost, count(*) as n from public.usage_records
                           where org_id = %s and end_user_id = any(%s) and occurred_at >= %s and occurred_at < %s
                           group by 1""", org_a.id, users, start, end)
    assert got == {e["end_user_id"]: (e["cost"], e["n"]) for e in expected}
    assert body["meta"]["source"] == "raw"
    # one end user as a filter, grouped by another dimension (the alias `user` works too)
    one = users[0]
    by_team = exact(get(functions_url, "/costs", org_a.tokens["viewer"], group_by="team", end_user_id=one,
                        **params))["data"]
    expected = raw(dsn, """select team, sum(cost_usd) as cost from public.usage_records where org_id = %s
                           and end_user_id = %s and occurred_at >= %s and occurred_at < %s group by 1""",
                   org_a.id, one, start, end)
    assert {row["team"]: row["total_cost"] for row in by_team} == {e["team"]: e["cost"] for e in expected}
    assert get(functions_url, "/costs", org_a.tokens["viewer"], group_by="user", **params).status_code == 200
    # raw rows are read over a bounded range only, and the refusal names the field
    long = get(functions_url, "/costs", org_a.tokens["viewer"], group_by="end_user_id",
               start_date=(today() - timedelta(days=60)).date().isoformat())
    assert long.status_code == 422 and long.json()["field"] == "end_date", long.text


@pytest.mark.parametrize("granularity, points", [("hour", 24), ("day", 30)])
def test_series_have_a_point_for_every_bucket(functions_url, org_a, granularity, points):
    ingest(functions_url, org_a, [event(datetime.now(UTC) - timedelta(minutes=5))])
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - (timedelta(hours=points) if granularity == "hour" else timedelta(days=points))
    if granularity == "day":
        end, start = end.replace(hour=0), start.replace(hour=0)
    r = get(functions_url, "/usage/timeseries", org_a.tokens["viewer"], granularity=granularity,
            start=start.isoformat(), end=end.isoformat(), org_id=org_a.id)
    assert r.status_code == 200, r.text
    data = exact(r)["data"]
    assert len(data) == points
    buckets = [datetime.fromisoformat(p["bucket"]) for p in data]
    assert buckets == sorted(buckets) and buckets[0] == start
    empty = [p for p in data if p["requests"] == 0]
    assert empty and all(p["cost_usd"] == 0 and p["latency_p95_ms"] is None for p in empty)


def test_money_is_a_json_number_everywhere(functions_url, org_a):
    ingest(functions_url, org_a, traffic(n=20))
    overview = get(functions_url, "/dashboard/overview", org_a.tokens["owner"], org_id=org_a.id).json()
    costs = get(functions_url, "/costs", org_a.tokens["owner"], group_by="model").json()
    status = get(functions_url, "/llm/status", org_a.tokens["owner"], org_id=org_a.id).json()
    for amount in (overview["data"]["spend"], costs["data"][0]["total_cost"],
                   status["data"]["ai_spend"]["cap_usd"], status["data"]["ai_spend"]["spend_usd"]):
        assert type(amount) in (int, float), amount
    assert Decimal(str(overview["data"]["spend"])) > 0


@pytest.mark.parametrize("path", ["/costs", "/dashboard/overview", "/usage/timeseries", "/forecast", "/anomalies",
                                  "/optimization/recommendations", "/llm/status"])
def test_every_answer_is_one_envelope(functions_url, org_a, path):
    r = get(functions_url, path, org_a.tokens["owner"], org_id=org_a.id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "meta"} and isinstance(body["meta"], dict), body


@pytest.mark.parametrize("path, permission", [("/anomalies", "anomalies.read"),
                                              ("/optimization/recommendations", "recommendations.read")])
def test_viewers_asking_for_what_they_may_not_read_get_403(functions_url, org_a, path, permission):
    for params in ({}, {"org_id": org_a.id}):
        r = get(functions_url, path, org_a.tokens["viewer"], **params)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden" and permission in r.json()["message"]
    assert get(functions_url, path, org_a.tokens["member"], org_id=org_a.id).status_code == 200


def test_a_422_names_every_bad_field(functions_url, org_a):
    r = get(functions_url, "/costs", org_a.tokens["viewer"], start_date="yesterday", granularity="weekly",
            api_key_id="not-a-uuid")
    assert r.status_code == 422, r.text
    body = r.json()
    assert {e["field"] for e in body["errors"]} >= {"start_date", "granularity", "api_key_id"}, body
    assert body["field"] == body["errors"][0]["field"] and body["message"].count(": ") >= 3
