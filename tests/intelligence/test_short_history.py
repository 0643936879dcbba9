"""Short histories: one forecasting method behind the month-end forecast and a budget's projected spend, so
they agree for the same scope and period; intervals that say how little is known on day one; and coverage
of those intervals on short random series (seeds held out from the constants' choice)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from series import hour_now, load_hours

from org_fixtures import Org
from tokentra_core.db import connect
from tokentra_worker._forecast_model import forecast_days
from tokentra_worker.forecasts import _row, forecast_period, run_forecasts


def test_day_one_forecast_has_honest_intervals():
    today = date(2026, 12, 2)
    # Six hours into the first day: $3 so far, nothing before.
    f = forecast_period([today], [3.0], today, date(2027, 1, 1), 0.25, None)
    row = _row(f, 3.0, today, None)
    assert row["method"].startswith("today's run rate")
    # The run rate ($12/day) carried over 29.75 days, not "nothing more" and not one flat number.
    assert 200 < row["forecast"] < 500
    assert row["lower_95"] < row["lower_80"] < row["forecast"] < row["upper_80"] < row["upper_95"]
    assert row["lower_80"] >= 3.0  # never below what is already spent
    daily = row["daily_forecast"].obj
    assert all(d["lower_80"] < d["expected"] < d["upper_80"] for d in daily)


def test_intervals_narrow_as_days_accumulate():
    rng = np.random.default_rng(17)
    y = 20 * rng.lognormal(0, 0.2, 13)

    def width(days: int) -> float:
        totals = forecast_days(y[:days], 20, seed=days, today=5.0, elapsed=0.25).paths.sum(axis=1)
        lo, mid, hi = np.percentile(totals, [10, 50, 90])
        return (hi - lo) / mid

    assert width(0) > width(3) > width(12)


@pytest.mark.parametrize("seed", [101, 202, 303])
def test_short_history_intervals_cover_period_totals(seed):
    """Random daily series (levels, day-to-day noise, weekly shape, drift all drawn per series), cut at a
    random day under two weeks and a random hour: the period's remaining spend falls inside the 80%
    interval about 80% of the time and inside the 95% one about 95%."""
    rng = np.random.default_rng(seed)
    hit80 = hit95 = n = 0
    for _ in range(120):
        level = float(np.exp(rng.uniform(np.log(0.5), np.log(500))))
        noise = rng.uniform(0.05, 0.7)
        week = np.exp(rng.normal(0, rng.uniform(0, 0.3), 7))
        drift = rng.normal(0, 0.01)
        days_seen = int(rng.integers(0, 14))
        horizon = int(rng.integers(5, 30))
        t = np.arange(days_seen + horizon + 1)
        truth = level * week[t % 7] * np.exp(drift * t) * rng.lognormal(0, noise, len(t))
        elapsed = float(rng.uniform(0.1, 0.9))
        # today's spend so far is its share of the day, with its own noise (hours are not all alike)
        today = truth[days_seen] * elapsed * float(rng.lognormal(0, 0.2))
        f = forecast_days(truth[:days_seen], horizon + 1, seed=int(rng.integers(1 << 30)), today=today,
                          elapsed=elapsed)
        weights = np.ones(horizon + 1)
        weights[0] = 1 - elapsed
        totals = f.paths @ weights
        actual = truth[days_seen] * (1 - elapsed) + truth[days_seen + 1 :].sum()
        lo95, lo80, hi80, hi95 = np.percentile(totals, [2.5, 10, 90, 97.5])
        hit80 += lo80 <= actual <= hi80
        hit95 += lo95 <= actual <= hi95
        n += 1
    assert 0.7 <= hit80 / n <= 0.95, hit80 / n
    assert 0.86 <= hit95 / n <= 1.0, hit95 / n


def test_budget_projection_is_the_forecast_of_its_scope(dsn: str, org: Org):
    now = hour_now()
    hours = max(now.hour, 1)  # a new organization: usage since this morning only
    load_hours(dsn, org.id, np.full(hours, 0.5), now, team="search")
    load_hours(dsn, org.id, np.full(hours, 0.25), now, team="ads")
    with connect(dsn, autocommit=True) as conn:
        ids = {
            scope: conn.execute(
                "insert into public.budgets (org_id, name, amount, period, scope_type, scope_id) "
                "values (%s, %s, 500, 'monthly', %s, %s) returning id",
                (org.id, f"{scope} budget", scope, None if scope == "organization" else "search"),
            ).fetchone()["id"]
            for scope in ("organization", "team")
        }
        before = conn.execute(
            "select projected_spend, projected_method from public.budget_status where id = %s",
            (ids["organization"],),
        ).fetchone()
    assert before["projected_method"].startswith("run rate")  # nothing forecast yet, and it says so

    run_forecasts(dsn, now=now + timedelta(minutes=10), orgs=[org.id])
    with connect(dsn) as conn:
        month = conn.execute(
            "select * from public.spend_forecasts where org_id = %s and budget_id is null", (org.id,)
        ).fetchone()
        status = {
            r["id"]: r
            for r in conn.execute("select * from public.budget_status where org_id = %s", (org.id,)).fetchall()
        }
        team = conn.execute(
            "select * from public.spend_forecasts where budget_id = %s", (ids["team"],)
        ).fetchone()
    org_budget = status[ids["organization"]]
    # same scope, same period: the budget's projected spend is the month-end forecast, to the cent
    assert org_budget["projected_spend"] == month["forecast"]
    assert org_budget["projected_method"] == month["method"]
    assert (org_budget["projected_lower_80"], org_budget["projected_upper_80"]) == (
        month["lower_80"],
        month["upper_80"],
    )
    # day one: intervals around the point, not equal to it
    assert month["lower_80"] < month["forecast"] < month["upper_80"]
    # the team's budget is forecast on the team's own series: about two thirds of the organization's
    assert status[ids["team"]]["projected_spend"] == team["forecast"]
    ratio = float(team["forecast"] - team["spent_to_date"]) / float(month["forecast"] - month["spent_to_date"])
    assert 0.5 < ratio < 0.8
