"""GET /costs, /dashboard/overview and /usage/timeseries over real HTTP: exact against raw aggregates,
run under the caller's RLS, 401 for bad tokens, 422 naming the field, CSV on request."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import jwt
import pytest
from analytics_fixtures import event, exact, get, ingest, raw, traffic

from tokentra_core.db import connect
from tokentra_core.settings import get_settings


def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def raw_by(dsn: str, org: str, dim: str, start: datetime, end: datetime) -> dict:
    rows = raw(
        dsn,
        f"""
        select {dim} as key, sum(cost_usd) as cost, count(*) as requests, sum(input_tokens) as input_tokens,
               sum(output_tokens) as output_tokens, count(*) filter (where status <> 'success') as errors,
               sum(retry_count) as retries
        from public.usage_records where org_id = %s and occurred_at >= %s and occurred_at < %s group by 1""",
        org,
        start,
        end,
    )
    return {
        r["key"]: (
            r["cost"] or Decimal(0),
            r["requests"],
            r["input_tokens"],
            r["output_tokens"],
            r["errors"],
            r["retries"],
        )
        for r in rows
    }


def api_by(data: list[dict], dim: str) -> dict:
    return {
        r.get(dim): (
            r["total_cost"],
            r["total_requests"],
            r["total_input_tokens"],
            r["total_output_tokens"],
            r["total_errors"],
            r["total_retries"],
        )
        for r in data
    }


@pytest.mark.parametrize("dim", ["model", "feature", "team", "provider", "status"])
def test_costs_by_dimension_equal_raw_aggregates_exactly(functions_url, dsn, org_a, dim):
    ingest(functions_url, org_a, traffic())
    start, end = today() - timedelta(days=4), today() + timedelta(days=1)
    r = get(
        functions_url,
        "/costs",
        org_a.tokens["viewer"],
        group_by=dim,
        start_date=start.date().isoformat(),
        end_date=today().date().isoformat(),
    )
    assert r.status_code == 200, r.text
    body = exact(r)
    assert body["meta"]["currency"] == "USD" and body["meta"]["start_date"] == start.date().isoformat()
    assert api_by(body["data"], dim) == raw_by(dsn, org_a.id, dim, start, end)
    # costs are exact decimals: more digits than a float holds survive the round trip
    assert all(isinstance(row["total_cost"], Decimal) for row in body["data"])


def test_costs_per_day_and_hour_with_filters_equal_raw(functions_url, dsn, org_a):
    ingest(functions_url, org_a, traffic())
    start, end = today() - timedelta(days=4), today() + timedelta(days=1)
    r = get(
        functions_url,
        "/costs",
        org_a.tokens["owner"],
        group_by="day,model",
        model="gpt-4o",
        start_date=start.date().isoformat(),
        end_date=today().date().isoformat(),
    )
    assert r.status_code == 200, r.text
    rows = exact(r)["data"]
    # every day of the range is there, the days without usage as zero points
    assert sorted({row["date"] for row in rows}) == [
        (start + timedelta(days=i)).date().isoformat() for i in range((today() - start).days + 1)
    ]
    assert all(row["total_cost"] == 0 and row["total_requests"] == 0 for row in rows if not row["total_requests"])
    per_day = {(row["date"], row["model"]): row["total_cost"] for row in rows if row["total_requests"]}
    expected = raw(
        dsn,
        """select (date_trunc('day', occurred_at, 'UTC') at time zone 'UTC')::date::text as day,
                                  model, sum(cost_usd) as cost
                           from public.usage_records where org_id = %s and model = 'gpt-4o'
                             and occurred_at >= %s and occurred_at < %s group by 1, 2""",
        org_a.id,
        start,
        end,
    )
    assert per_day == {(e["day"], e["model"]): e["cost"] for e in expected}

    r = get(
        functions_url,
        "/costs",
        org_a.tokens["owner"],
        granularity="hour",
        team="team-1",
        start_date=(today() - timedelta(days=1)).date().isoformat(),
        end_date=today().date().isoformat(),
    )
    rows = exact(r)["data"]
    assert len(rows) == 48  # two days of hours, zero-filled
    hours = {row["hour"]: row["total_requests"] for row in rows if row["total_requests"]}
    expected = raw(
        dsn,
        """select date_trunc('hour', occurred_at, 'UTC') as hour, count(*) as n
                           from public.usage_records where org_id = %s and team = 'team-1'
                             and occurred_at >= %s and occurred_at < %s group by 1""",
        org_a.id,
        today() - timedelta(days=1),
        today() + timedelta(days=1),
    )
    assert {datetime.fromisoformat(h): n for h, n in hours.items()} == {e["hour"]: e["n"] for e in expected}


def test_a_user_sees_only_their_organizations_usage(functions_url, org_a, org_b):
    ingest(functions_url, org_a, traffic(n=20))
    ingest(functions_url, org_b, traffic(n=20, seed=3))
    # asking for the other organization by id is refused, saying why, rather than answered empty
    for path, params in [
        ("/costs", {"group_by": "org_id"}),
        ("/dashboard/overview", {}),
        ("/usage/timeseries", {}),
        ("/forecast", {}),
    ]:
        r = get(functions_url, path, org_a.tokens["owner"], org_id=org_b.id, **params)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden" and "usage.read" in r.json()["message"]
    mine = exact(get(functions_url, "/costs", org_a.tokens["owner"], group_by="org_id"))["data"]
    assert [row["org_id"] for row in mine] == [org_a.id]
    # a signed-in user of no organization is told so too
    r = get(functions_url, "/costs", org_a.tokens["outsider"])
    assert r.status_code == 403 and "any of your organizations" in r.json()["message"], r.text


def test_an_event_is_visible_the_moment_it_is_stored(functions_url, org_a):
    model = f"fresh-model-{time.time_ns()}"
    ingest(functions_url, org_a, [event(model=model, provider="openai")])
    r = get(
        functions_url,
        "/costs",
        org_a.tokens["viewer"],
        model=model,
        group_by="model",
        start_date=today().date().isoformat(),
        end_date=today().date().isoformat(),
    )
    assert [row["total_requests"] for row in exact(r)["data"]] == [1]


def test_late_events_count_at_once_and_after_the_next_refresh(functions_url, dsn, org_a):
    ingest(functions_url, org_a, traffic(n=30))
    with connect(dsn) as conn:  # move the watermark past everything stored so far
        conn.execute("select private.refresh_usage_rollups()")
        conn.commit()
    late = [event(datetime.now(UTC) - timedelta(days=2, minutes=i), model="gpt-4o") for i in range(25)]
    ingest(functions_url, org_a, late)
    start, end = today() - timedelta(days=4), today() + timedelta(days=1)
    params = {
        "group_by": "model",
        "start_date": start.date().isoformat(),
        "end_date": today().date().isoformat(),
    }
    assert api_by(
        exact(get(functions_url, "/costs", org_a.tokens["viewer"], **params))["data"], "model"
    ) == raw_by(dsn, org_a.id, "model", start, end)
    with connect(dsn) as conn:
        conn.execute("select private.refresh_usage_rollups()")
        conn.commit()
    assert api_by(
        exact(get(functions_url, "/costs", org_a.tokens["viewer"], **params))["data"], "model"
    ) == raw_by(dsn, org_a.id, "model", start, end)


def test_overview_equals_raw_month_to_date(functions_url, dsn, org_a):
    ingest(functions_url, org_a, traffic(days=2, n=60))
    r = get(functions_url, "/dashboard/overview", org_a.tokens["owner"], org_id=org_a.id)
    assert r.status_code == 200, r.text
    body = exact(r)
    assert set(body) == {"data", "meta"} and body["meta"]["currency"] == "USD"
    o = body["data"]
    start = datetime.fromisoformat(o["period"]["start"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(o["period"]["end"]).replace(tzinfo=UTC) + timedelta(days=1)
    totals = raw(
        dsn,
        """select coalesce(sum(cost_usd), 0) as spend, count(*) as requests,
                                count(*) filter (where status <> 'success') as errors,
                                count(distinct provider) as providers
                         from public.usage_records
                         where org_id = %s and occurred_at >= %s and occurred_at < %s""",
        org_a.id,
        start,
        end,
    )[0]
    assert (o["spend"], o["requests"], o["errors"], o["active_providers"]) == (
        totals["spend"],
        totals["requests"],
        totals["errors"],
        totals["providers"],
    )
    assert sum(d["cost_usd"] for d in o["spend_by_day"]) == totals["spend"]
    teams = raw_by(dsn, org_a.id, "team", start, end)
    assert {t["team"]: t["cost_usd"] for t in o["top_teams"]} == {k: v[0] for k, v in teams.items() if k}
    users = raw(
        dsn,
        """select end_user_id, sum(cost_usd) as cost from public.usage_records
                        where org_id = %s and occurred_at >= %s and occurred_at < %s
                          and end_user_id is not null
                        group by 1 order by 2 desc, 1 limit 5""",
        org_a.id,
        start,
        end,
    )
    assert [(u["end_user_id"], u["cost_usd"]) for u in o["top_users"]] == [
        (u["end_user_id"], u["cost"]) for u in users
    ]
    assert o["top_api_keys"][0]["api_key_id"] == org_a.key_id


def test_timeseries_buckets_equal_raw(functions_url, dsn, org_a):
    ingest(functions_url, org_a, traffic(days=1, n=40))
    r = get(functions_url, "/usage/timeseries", org_a.tokens["member"], group_by="model")
    assert r.status_code == 200, r.text
    body = exact(r)
    start, end = datetime.fromisoformat(body["meta"]["start"]), datetime.fromisoformat(body["meta"]["end"])
    assert end - start == timedelta(hours=24) or end - start == timedelta(hours=25)
    expected = raw(
        dsn,
        """select date_trunc('hour', occurred_at, 'UTC') as b, model, sum(cost_usd) as cost,
                                  count(*) as n,
                                  percentile_disc(0.95) within group (order by latency_ms) as p95
                           from public.usage_records
                           where org_id = %s and occurred_at >= %s and occurred_at < %s
                           group by 1, 2""",
        org_a.id,
        start,
        end,
    )
    got = {
        (datetime.fromisoformat(p["bucket"]), p["model"]): (p["cost_usd"], p["requests"])
        for p in body["data"]
        if p["requests"]
    }
    assert got == {(e["b"], e["model"]): (e["cost"], e["n"]) for e in expected}
    # zero-filled: every model seen has a point in every hour of the window
    hours = int((end - start) / timedelta(hours=1))
    models = {p["model"] for p in body["data"]}
    assert len(body["data"]) == hours * len(models)
    body["data"] = [p for p in body["data"] if p["requests"]]
    # percentiles are read from the histogram: the same slot as the exact percentile
    with connect(dsn) as conn:
        for p, e in zip(
            sorted(body["data"], key=lambda p: (p["bucket"], p["model"])),
            sorted(expected, key=lambda e: (e["b"].isoformat(), e["model"])),
            strict=True,
        ):
            slot = conn.execute(
                "select analytics.latency_slot(%s) as s, analytics.latency_slot_value("
                "analytics.latency_slot(%s)) as v",
                (e["p95"], e["p95"]),
            ).fetchone()
            assert p["latency_p95_ms"] == slot["v"]


def test_csv_export(functions_url, dsn, org_a):
    ingest(functions_url, org_a, traffic(n=30))
    start = today() - timedelta(days=4)
    r = get(
        functions_url,
        "/costs",
        org_a.tokens["viewer"],
        accept="text/csv",
        group_by="day,feature",
        start_date=start.date().isoformat(),
        end_date=today().date().isoformat(),
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0])[:3] == ["date", "feature", "total_cost"]
    by_feature: dict[str, Decimal] = {}
    for row in rows:
        by_feature[row["feature"]] = by_feature.get(row["feature"], Decimal(0)) + Decimal(row["total_cost"])
    assert by_feature == {
        k: v[0] for k, v in raw_by(dsn, org_a.id, "feature", start, today() + timedelta(days=1)).items()
    }
    for path in ("/dashboard/overview", "/usage/timeseries"):
        r = get(functions_url, path, org_a.tokens["viewer"], accept="text/csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        assert len(list(csv.reader(io.StringIO(r.text)))) > 1


def _token(secret: str | None = None, **over) -> str:
    claims = {
        "sub": "00000000-0000-0000-0000-000000000001",
        "role": "authenticated",
        "aud": "authenticated",
        "exp": int(time.time()) + 600,
        **over,
    }
    return jwt.encode(claims, secret or get_settings().supabase_jwt_secret, algorithm="HS256")


@pytest.mark.parametrize(
    "token",
    [
        None,
        "not-a-jwt",
        _token(secret="another-secret-that-is-at-least-32-characters"),
        _token(exp=int(time.time()) - 10),
        _token(aud="somebody-else"),
        _token(role="anon"),
        _token(role="service_role"),
        jwt.encode({"sub": "x", "role": "authenticated", "aud": "authenticated"}, None, algorithm="none"),
    ],
)
@pytest.mark.parametrize("path", ["/costs", "/dashboard/overview", "/usage/timeseries"])
def test_bad_or_missing_tokens_get_401(functions_url, path, token):
    r = get(functions_url, path, token)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"group_by": "colour"}, "group_by"),
        ({"granularity": "week"}, "granularity"),
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"start_date": "2026-02-10", "end_date": "2026-02-01"}, "end_date"),
        ({"group_by": "day", "granularity": "hour"}, "granularity"),
        ({"api_key_id": "not-a-uuid"}, "api_key_id"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_parameters_get_422_naming_the_field(functions_url, org_a, params, field):
    r = get(functions_url, "/costs", org_a.tokens["viewer"], **params)
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(f"{field}:"), r.json()


def test_timeseries_bad_parameters_get_422(functions_url, org_a):
    r = get(functions_url, "/usage/timeseries", org_a.tokens["viewer"], group_by="colour")
    assert r.status_code == 422 and r.json()["message"].startswith("group_by:")
    r = get(
        functions_url,
        "/usage/timeseries",
        org_a.tokens["viewer"],
        start="2026-01-01T00:00:00Z",
        end="2026-06-01T00:00:00Z",
    )
    assert r.status_code == 422 and r.json()["message"].startswith("start:")
