"""`tokentra bench forecast`: the spend forecaster backtested on rolling origins.

Series: daily spend of generated organizations (weekly seasonality of varying depth, trends, level
changes, multiplicative noise). From each origin the forecaster sees the past only and predicts the
next `horizon` days. Scores: MASE (mean absolute error over the horizon divided by the in-sample MAE of
the one-week seasonal-naive forecast) for the model and for the seasonal-naive forecast itself, their
ratio (target below 0.8), and the 80%/95% interval coverage of
the horizon's total.
"""

from __future__ import annotations

import json

import numpy as np

from worker._forecast_model import forecast_days, seasonal_naive

__all__ = ["run", "synthetic_series"]


def synthetic_series(n_series: int = 30, days: int = 120, seed: int = 11):
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    for _ in range(n_series):
        level = rng.uniform(5, 500)
        depth = rng.uniform(0.1, 0.6)
        weekly = np.where(t % 7 >= 5, 1 - depth, 1.0)
        trend = 1 + rng.uniform(-0.003, 0.006) * t
        shift = (
            np.where(t >= rng.integers(30, days), rng.uniform(0.7, 1.5), 1.0) if rng.random() < 0.3 else 1.0
        )
        noise = rng.lognormal(0, rng.uniform(0.05, 0.25), days)
        yield level * weekly * trend * shift * noise


def run(
    as_json: bool = False, horizon: int = 14, first_origin: int = 56, step: int = 14, seed: int = 11
) -> dict:
    model_err, naive_err = [], []
    covered = {80: 0, 95: 0}
    origins = 0
    for y in synthetic_series(seed=seed):
        for origin in range(first_origin, len(y) - horizon + 1, step):
            past, future = y[:origin], y[origin : origin + horizon]
            scale = float(np.mean(np.abs(past[7:] - past[:-7])))
            f = forecast_days(past, horizon, seed=origin)
            model_err.append(float(np.mean(np.abs(f.mean - future))) / scale)
            naive_err.append(float(np.mean(np.abs(seasonal_naive(past, horizon) - future))) / scale)
            totals = f.paths.sum(axis=1)
            for level, (lo, hi) in ((80, (10, 90)), (95, (2.5, 97.5))):
                covered[level] += bool(np.percentile(totals, lo) <= future.sum() <= np.percentile(totals, hi))
            origins += 1
    out = {
        "series": 30,
        "origins": origins,
        "horizon_days": horizon,
        "mase_model": round(float(np.mean(model_err)), 4),
        "mase_seasonal_naive": round(float(np.mean(naive_err)), 4),
    }
    out["ratio_model_to_seasonal_naive"] = round(out["mase_model"] / out["mase_seasonal_naive"], 4)
    out["coverage_80"] = round(covered[80] / origins, 4)
    out["coverage_95"] = round(covered[95] / origins, 4)
    if as_json:
        print(json.dumps(out))
    else:
        print(f"rolling-origin backtest: {out['series']} series, {origins} origins, {horizon}-day horizon")
        print(f"  MASE model (Holt-Winters, log, weekly) {out['mase_model']:.3f}")
        print(f"  MASE seasonal naive (last week)        {out['mase_seasonal_naive']:.3f}")
        print(
            f"  model / seasonal naive                 {out['ratio_model_to_seasonal_naive']:.3f}  "
            f"(target < 0.8)"
        )
        print(
            f"  interval coverage of the horizon total: 80% -> {out['coverage_80']:.2f}, "
            f"95% -> {out['coverage_95']:.2f}"
        )
    return out
