"""The `anomalies` job: incidents in hourly and daily series of every organization and of each team,
project, feature, model and API key with enough history, for cost, requests, tokens per request, error
rate and latency; models by their canonical model (a snapshot and its bare name are one series).
Series come from the rollups (analytics.usage_hourly / usage_daily); the detector is in _anomaly_model.
One row per incident, upserted while it lasts and closed when the series is back."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from tokentra_core.db import one
from tokentra_worker._anomaly_model import Incident, detect
from tokentra_worker._per_org import for_each_active_org

__all__ = ["GRAINS", "METRICS", "detect_org", "detect_series", "run_anomalies"]

log = logging.getLogger("tokentra.worker.anomalies")
THRESHOLD = 6.0  # robust standard deviations

DIMENSIONS = ("organization", "team", "project", "feature", "model", "api_key_id")
# grain: (interval, points of history read, daily period, weekly period, minimum history, recent points)
# An hourly series is checked from a week and a day on: the detector flags nothing before every weekday
# has been seen once with a baseline window behind it (else the first Monday after a weekend is news).
GRAINS = {
    "hour": (timedelta(hours=1), 28 * 24, 24, 168, 7 * 24 + 24, 48),
    "day": (timedelta(days=1), 91, 7, None, 21, 3),
}
# metric: (direction, log scale, minimum deviation in the metric's units)
# (on a log scale the minimum deviation is a ratio: log(1.25) means "at least 25% off the baseline", so
# a very smooth series does not raise an incident over a move nobody would act on).
METRICS = {
    "cost": ("up", True, float(np.log(1.25))),
    "requests": ("up", True, float(np.log(1.25))),
    "tokens_per_request": ("both", True, float(np.log(1.25))),
    "error_rate": ("up", False, 0.05),
    "latency_ms": ("up", True, float(np.log(1.25))),
}

_SERIES_SQL = """
select date_trunc(%(grain)s, u.bucket, 'UTC') as bucket,
       case when grouping(u.team) = 0 then 'team' when grouping(u.project) = 0 then 'project'
            when grouping(u.feature) = 0 then 'feature' when grouping(u.canonical_model) = 0 then 'model'
            when grouping(u.api_key_id) = 0 then 'api_key_id' else 'organization' end as dimension,
       coalesce(u.team, u.project, u.feature, u.canonical_model, u.api_key_id::text) as value,
       sum(u.cost_usd)::float8 as cost, sum(u.requests)::float8 as requests, sum(u.errors)::float8 as errors,
       sum(u.input_tokens + u.output_tokens)::float8 as tokens,
       sum(u.latency_sum_ms)::float8 as latency_sum, sum(u.latency_count)::float8 as latency_count
from analytics.{view} u
where u.org_id = %(org)s and u.bucket >= %(since)s and u.bucket < %(until)s
group by grouping sets ((1), (1, u.team), (1, u.project), (1, u.feature), (1, u.canonical_model), (1, u.api_key_id))
"""


def _severity(score: float, money: float) -> str:
    by_score = 0 if score < 8 else 1 if score < 12 else 2 if score < 20 else 3
    by_money = 0 if money < 10 else 1 if money < 100 else 2 if money < 1000 else 3
    level = max(by_score, by_money)
    if money < 1:
        level = min(level, 1)  # a loud blip in pennies is not an emergency
    return ("low", "medium", "high", "critical")[level]


def _metric_series(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    req = cols["requests"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"cost": cols["cost"], "requests": req}
        for name, num, den in (
            ("tokens_per_request", cols["tokens"], req),
            ("error_rate", cols["errors"], req),
            ("latency_ms", cols["latency_sum"], cols["latency_count"]),
        ):
            ratio = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
            if np.isnan(ratio).all():
                continue
            # Hours without calls have no ratio: carry the last one forward (first: the median).
            fill = float(np.nanmedian(ratio))
            for i in range(len(ratio)):
                if np.isnan(ratio[i]):
                    ratio[i] = ratio[i - 1] if i else fill
            out[name] = ratio
    return out


def detect_series(x: np.ndarray, grain: str, metric: str) -> list[Incident]:
    """Incidents in one series of a grain and metric, at the job's settings."""
    period, weekly = GRAINS[grain][2], GRAINS[grain][3]
    direction, log_scale, min_dev = METRICS[metric]
    return detect(
        x,
        period,
        weekly,
        direction=direction,
        log=log_scale,
        min_scale=min_dev / THRESHOLD,
        threshold=THRESHOLD,
        window=min(period * 7 if grain == "day" else 24, len(x) // 2),
    )


def detect_org(conn, org: str, grain: str, until: datetime) -> list[dict[str, Any]]:
    """Incidents found in one organization's series ending just before `until` (a bucket boundary)."""
    step, points, _, _, min_history, recent = GRAINS[grain]
    since = until - step * points
    view = "usage_hourly" if grain == "hour" else "usage_daily"
    rows = conn.execute(
        _SERIES_SQL.format(view=view), {"grain": grain, "org": org, "since": since, "until": until}
    ).fetchall()
    series: dict[tuple[str, str | None], dict[datetime, dict]] = defaultdict(dict)
    for r in rows:
        if r["dimension"] != "organization" and r["value"] is None:
            continue
        series[(r["dimension"], r["value"])][r["bucket"]] = r
    found = []
    stamps = [since + step * i for i in range(points)]
    for (dimension, value), by_bucket in series.items():
        first = min(by_bucket)
        if (until - first) < step * min_history:
            continue  # not enough history to know what normal is
        start = stamps.index(first) if first in stamps else 0
        idx = stamps[start:]
        cols = {
            k: np.array([float(by_bucket[b][k]) if b in by_bucket else 0.0 for b in idx])
            for k in ("cost", "requests", "errors", "tokens", "latency_sum", "latency_count")
        }
        for metric, x in _metric_series(cols).items():
            for inc in detect_series(x, grain, metric):
                if inc.end < len(x) - recent:
                    continue  # long over and recorded by earlier runs
                actual = x[inc.start : inc.end + 1]
                expected = np.array(inc.expected)
                span = cols["cost"][inc.start : inc.end + 1]
                if metric == "cost":
                    money = float(np.clip(actual - expected, 0, None).sum())
                else:
                    money = float(span.sum())
                if metric in ("cost", "requests") and float(actual.sum()) - float(expected.sum()) <= 0:
                    continue
                found.append(
                    {
                        "metric": metric,
                        "dimension": dimension,
                        "dimension_value": value,
                        "grain": grain,
                        "kind": inc.kind,
                        "score": round(inc.score, 3),
                        "window_start": idx[inc.start],
                        "window_end": idx[inc.end] + step,
                        "ongoing": inc.end >= len(x) - 1,
                        "expected_value": float(expected.mean()),
                        "actual_value": float(actual.mean()),
                        "money_involved": round(money, 4),
                        "severity": _severity(abs(inc.score), money),
                        "details": {
                            "series": [
                                {"bucket": b.isoformat(), "value": round(float(v), 6)}
                                for b, v in zip(idx[-min(len(idx), 72) :], x[-72:], strict=False)
                            ],
                            "expected_series": [round(float(v), 6) for v in expected],
                            "method": "seasonal median profile + trailing median, robust z (MAD), new extremes only",
                        },
                    }
                )
    return found


_UPSERT = """
insert into public.anomalies as a (org_id, metric, dimension, dimension_value, grain, kind, score, severity,
                                   window_start, window_end, expected_value, actual_value, money_involved,
                                   status, details)
values (%(org)s, %(metric)s, %(dimension)s, %(dimension_value)s, %(grain)s, %(kind)s, %(score)s, %(severity)s,
        %(window_start)s, %(window_end)s, %(expected_value)s, %(actual_value)s, %(money_involved)s,
        %(status)s, %(details)s)
on conflict (org_id, metric, dimension, coalesce(dimension_value, ''), grain, window_start) do update
  set kind = excluded.kind, score = excluded.score, severity = excluded.severity,
      window_end = excluded.window_end, expected_value = excluded.expected_value,
      actual_value = excluded.actual_value, money_involved = excluded.money_involved, details =
        excluded.details,
      status = case when a.status = 'acknowledged' and excluded.status = 'open' then a.status
                    else excluded.status end,
      updated_at = now()
returning id
"""


def run_org(conn, org: str, now: datetime) -> dict[str, int]:
    """Detect, upsert, close what is over, sync the anomaly alerts: one organization, one transaction."""
    seen: list[str] = []
    opened = 0
    for grain in GRAINS:
        step = GRAINS[grain][0]
        until = now.replace(minute=0, second=0, microsecond=0)
        if grain == "day":
            until = until.replace(hour=0)
        for inc in detect_org(conn, org, grain, until):
            row = conn.execute(
                _UPSERT,
                {
                    **inc,
                    "org": org,
                    "status": "open" if inc["ongoing"] else "closed",
                    "details": Jsonb({**inc["details"], "grain_seconds": step.total_seconds()}),
                },
            ).fetchone()
            seen.append(row["id"])
            opened += inc["ongoing"]
    closed = conn.execute(
        "update public.anomalies set status = 'closed', updated_at = now() "
        "where org_id = %s and status in ('open', 'acknowledged') and not (id = any(%s::uuid[]))",
        (org, seen),
    ).rowcount
    alerts = one(conn.execute("select private.sync_anomaly_alerts(%s) as r", (org,)))["r"]
    return {"incidents": len(seen), "open": opened, "closed": closed, "alerts": alerts["raised"]}


def run_anomalies(ctx, now: datetime | None = None, orgs: list[str] | None = None) -> str:
    """The job: every organization with usage in the last four weeks."""
    n, totals = for_each_active_org(ctx, now or datetime.now(UTC), 28, run_org, "anomaly detection", orgs)
    return (
        f"{n} organizations: {totals['incidents']} incidents, {totals['open']} open, "
        f"{totals['closed']} closed, {totals['alerts']} alerts raised, {totals['failed']} "
        f"organizations failed"
    )
