"""The forecasts job on the real database, the overrun alert, and GET /functions/v1/forecast."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from series import hour_now, load_hours

from org_fixtures import Org, api
from tokentra_core.db import connect
from tokentra_worker._forecast_model import forecast_days
from tokentra_worker.forecasts import run_forecasts


def test_model_follows_weekly_seasonality_and_short_histories_fall_back():
    week = np.array([10, 10, 10, 10, 10, 4, 4], dtype=float)
    y = np.tile(week, 6) * np.random.default_rng(0).lognormal(0, 0.03, 42)
    f = forecast_days(y, 7)
    assert np.allclose(f.mean, week, rtol=0.1) and "seasonal" in f.method
    assert f.paths.shape == (1000, 7) and (f.paths >= 0).all()
    short = forecast_days(np.array([5.0, 6.0, 7.0]), 3)
    assert np.allclose(short.mean, 6.0) and short.method.startswith("mean")


def test_job_forecasts_org_and_budget_and_raises_overrun(dsn: str, org: Org, functions_url: str):
    now = hour_now()
    # Three weeks at $1/hour ($24/day); a $100 monthly budget must run out.
    load_hours(dsn, org.id, np.full(21 * 24, 1.0), now)
    with connect(dsn, autocommit=True) as conn:
        budget = conn.execute(
            "insert into public.budgets (org_id, name, amount, period) values "
            "(%s, 'monthly', 100, 'monthly') returning id",
            (org.id,),
        ).fetchone()["id"]
        conn.execute(
            "insert into public.alert_rules (org_id, name, type, condition) values "
            "(%s, 'overrun', 'forecast_overrun', '{}')",
            (org.id,),
        )
    run_forecasts(dsn, now=now, orgs=[org.id])
    run_forecasts(dsn, now=now, orgs=[org.id])
    with connect(dsn) as conn:
        rows = conn.execute("select * from public.spend_forecasts where org_id = %s", (org.id,)).fetchall()
        events = conn.execute("select * from public.alert_events where org_id = %s", (org.id,)).fetchall()
    assert len(rows) == 2
    org_row = next(r for r in rows if r["budget_id"] is None)
    days_left = (org_row["period_end"] - now).total_seconds() / 86400
    expected = float(org_row["spent_to_date"]) + 24 * days_left
    assert abs(float(org_row["forecast"]) - expected) <= 0.05 * expected + 1
    assert (
        org_row["lower_95"]
        <= org_row["lower_80"]
        <= org_row["forecast"]
        <= org_row["upper_80"]
        <= org_row["upper_95"]
    )
    b = next(r for r in rows if r["budget_id"] == budget)
    if float(b["spent_to_date"]) + 24 * days_left >= 100:
        assert b["exhaustion_date"] is not None and float(b["overrun_probability"]) > 0.5
        assert [e["details"]["kind"] for e in events] == ["forecast_overrun"]

    r = api(functions_url, "GET", "/forecast", org.auth("member"))
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    assert body["organization"]["org_id"] == org.id and len(body["budgets"]) == 1
    assert body["budgets"][0]["budget_name"] == "monthly" and body["organization"]["daily_forecast"]
    refused = api(functions_url, "GET", "/forecast", org.auth("outsider"))
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert timedelta(0) < org_row["period_end"] - now <= timedelta(days=31)
