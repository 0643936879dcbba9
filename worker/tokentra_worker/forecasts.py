"""The `forecasts` job: month-end spend for each organization and period-end spend for each budget,
with 80% and 95% intervals, the overrun probability and the day the budget runs out; then the
forecast-overrun alerts. Daily spend comes from the rollups through private.budget_spend (which also
prices unpriced calls conservatively), the organization's as an organization-wide scope, so a budget's
projected spend (public.budget_status) and the month-end forecast come from one method."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import numpy as np
from psycopg.types.json import Jsonb

from tokentra_core.db import connect
from tokentra_worker._forecast_model import forecast_days
from tokentra_worker._per_org import dsn_of, log_org_failure

__all__ = ["forecast_period", "run_forecasts"]

log = logging.getLogger("tokentra.worker.forecasts")
HISTORY_DAYS = 56

# The organization's month is forecast from the series an organization-wide budget counts (its scope's
# spend per local day, unpriced calls at the conservative price): one method, one series per scope, so the
# month-end forecast and such a budget's projection are the same numbers.
_SCOPE_DAYS = (
    "select s.day, s.spend::float8 as spend "
    "from private.scope_daily_spend(%(org)s, %(scope_type)s, %(scope_id)s, %(days)s, %(now)s) s"
)


def forecast_period(
    days: list[date],
    spend: list[float],
    today: date,
    period_end: date,
    elapsed: float,
    amount: float | None,
    seed: int = 0,
) -> dict:
    """The forecast of a period: `spend` per day up to and including today (partial, `elapsed` of it
    gone); the period ends before `period_end`. Returns the row's numbers."""
    by_day = dict(zip(days, spend, strict=True))
    first = min(days) if days else today
    history = np.array([by_day.get(first + timedelta(d), 0.0) for d in range((today - first).days)])
    # Leading days before the first call are not history, they are nothing yet.
    nz = np.flatnonzero(history)
    history = history[nz[0] :] if len(nz) else history[:0]
    today_so_far = by_day.get(today, 0.0)
    horizon = (period_end - today).days  # today and the days after it
    f = forecast_days(history, horizon, seed=seed, today=today_so_far, elapsed=elapsed)
    weights = np.ones(horizon)
    if horizon:
        weights[0] = 1 - elapsed
    return {
        "history": history,
        "today": today_so_far,
        "mean": f.mean,
        "paths": f.paths,
        "weights": weights,
        "method": f.method,
        "horizon": horizon,
        "amount": amount,
    }


def _row(f: dict, spent: float, today: date, amount: float | None) -> dict:
    rest = f["paths"] @ f["weights"] if f["horizon"] else np.zeros(1)
    totals = spent + rest
    expected = spent + float(f["mean"] @ f["weights"]) if f["horizon"] else spent
    q = np.percentile(totals, [2.5, 10, 90, 97.5])
    cumulative = spent + np.cumsum(f["mean"] * f["weights"])
    exhaustion = None
    if amount is not None:
        if spent >= amount:
            exhaustion = today
        else:
            over = np.flatnonzero(cumulative >= amount)
            exhaustion = today + timedelta(int(over[0])) if len(over) else None
    daily = [
        {
            "day": (today + timedelta(i)).isoformat(),
            "expected": round(float(f["mean"][i]), 6),
            "lower_80": round(float(np.percentile(f["paths"][:, i], 10)), 6),
            "upper_80": round(float(np.percentile(f["paths"][:, i], 90)), 6),
        }
        for i in range(f["horizon"])
    ]
    hist = [
        {"day": (today - timedelta(len(f["history"]) - i)).isoformat(), "spend": round(float(v), 6)}
        for i, v in enumerate(f["history"])
    ]
    return {
        "spent_to_date": round(spent, 6),
        "forecast": round(max(expected, spent), 6),
        "lower_95": round(min(float(q[0]), expected), 6),
        "lower_80": round(min(float(q[1]), expected), 6),
        "upper_80": round(max(float(q[2]), expected), 6),
        "upper_95": round(max(float(q[3]), expected), 6),
        "overrun_probability": None if amount is None else round(float(np.mean(totals >= amount)), 4),
        "exhaustion_date": exhaustion,
        "method": f["method"],
        "history": Jsonb(hist),
        "daily_forecast": Jsonb(daily),
    }


_UPSERT = """
insert into public.spend_forecasts as f (org_id, budget_id, period_start, period_end, spent_to_date, forecast,
  lower_80, upper_80, lower_95, upper_95, budget_amount, overrun_probability, exhaustion_date, method,
    history,
  daily_forecast)
values (%(org)s, %(budget)s, %(period_start)s, %(period_end)s, %(spent_to_date)s, %(forecast)s, %(lower_80)s,
        %(upper_80)s, %(lower_95)s, %(upper_95)s, %(budget_amount)s, %(overrun_probability)s,
          %(exhaustion_date)s,
        %(method)s, %(history)s, %(daily_forecast)s)
on conflict (org_id, coalesce(budget_id, '00000000-0000-0000-0000-000000000000'::uuid), period_start) do
  update
  set spent_to_date = excluded.spent_to_date, forecast = excluded.forecast, lower_80 = excluded.lower_80,
      upper_80 = excluded.upper_80, lower_95 = excluded.lower_95, upper_95 = excluded.upper_95,
      budget_amount = excluded.budget_amount, overrun_probability = excluded.overrun_probability,
      exhaustion_date = excluded.exhaustion_date, method = excluded.method, history = excluded.history,
      daily_forecast = excluded.daily_forecast, period_end = excluded.period_end, generated_at = now()
"""


def _local(conn, org: str, now: datetime) -> dict:
    return conn.execute(
        "select o.timezone, p.period_start, p.period_end, (%(now)s at time zone o.timezone)::date as today, "
        "extract(epoch from (%(now)s at time zone o.timezone) - date_trunc('day', %(now)s at time "
        "zone o.timezone))"
        " / 86400.0 as elapsed, (p.period_end at time zone o.timezone)::date as end_day, "
        "(p.period_start at time zone o.timezone)::date as start_day "
        "from public.organizations o cross join lateral private.budget_period('monthly', "
        "1::smallint, o.timezone, "
        "%(now)s) p where o.id = %(org)s",
        {"org": org, "now": now},
    ).fetchone()


def run_org(conn, org: str, now: datetime) -> int:
    loc = _local(conn, org, now)
    rows = conn.execute(
        _SCOPE_DAYS, {"org": org, "scope_type": "organization", "scope_id": None, "days": HISTORY_DAYS, "now": now}
    ).fetchall()
    days = [r["day"] for r in rows]
    spend = [r["spend"] for r in rows]
    f = forecast_period(days, spend, loc["today"], loc["end_day"], float(loc["elapsed"]), None)
    spent = sum(s for d, s in zip(days, spend, strict=True) if loc["start_day"] <= d <= loc["today"])
    conn.execute(
        _UPSERT,
        {
            "org": org,
            "budget": None,
            "period_start": loc["period_start"],
            "period_end": loc["period_end"],
            "budget_amount": None,
            **_row(f, spent, loc["today"], None),
        },
    )
    n = 1
    budgets = conn.execute(
        "select b.id, b.amount::float8 as amount, b.scope_type, b.scope_id, p.period_start, p.period_end, "
        "(p.period_start at time zone o.timezone)::date as start_day, "
        "(p.period_end at time zone o.timezone)::date as end_day "
        "from public.budgets b join public.organizations o on o.id = b.org_id "
        "cross join lateral private.budget_current_period(b, %s) p where b.org_id = %s and b.enabled",
        (now, org),
    ).fetchall()
    for b in budgets:
        series = conn.execute(
            _SCOPE_DAYS,
            {"org": org, "scope_type": b["scope_type"], "scope_id": b["scope_id"], "days": HISTORY_DAYS, "now": now},
        ).fetchall()
        bdays = [r["day"] for r in series]
        bspend = [r["spend"] for r in series]
        f = forecast_period(bdays, bspend, loc["today"], b["end_day"], float(loc["elapsed"]), b["amount"])
        bspent = sum(s for d, s in zip(bdays, bspend, strict=True) if b["start_day"] <= d <= loc["today"])
        conn.execute(
            _UPSERT,
            {
                "org": org,
                "budget": b["id"],
                "period_start": b["period_start"],
                "period_end": b["period_end"],
                "budget_amount": b["amount"],
                **_row(f, bspent, loc["today"], b["amount"]),
            },
        )
        n += 1
    conn.execute("select private.sync_forecast_alerts(%s)", (org,))
    return n


def run_forecasts(ctx, now: datetime | None = None, orgs: list[str] | None = None) -> str:
    """The job: every organization with usage in the last eight weeks or a budget."""
    now = now or datetime.now(UTC)
    written = failed = 0
    with connect(dsn_of(ctx)) as conn:
        if orgs is None:
            orgs = [
                r["org_id"]
                for r in conn.execute(
                    "select org_id from analytics.usage_daily where bucket >= %s union "
                    "select org_id from public.budgets where enabled",
                    (now - timedelta(days=HISTORY_DAYS),),
                ).fetchall()
            ]
        for org in orgs:
            if getattr(ctx, "stop", None) is not None and ctx.stop.is_set():
                break
            try:
                written += run_org(conn, str(org), now)
                conn.commit()
            except Exception as exc:
                conn.rollback()
                failed += 1
                log_org_failure("forecasts", str(org), exc)
    return f"{len(orgs)} organizations: {written} forecasts, {failed} organizations failed"
