"""`tokentra bench forecast`: the spend forecaster backtested on rolling origins.

Series: daily spend of generated organizations, varied on purpose so that no one model shape fits them
all: 10 to 20 weeks long, $2 to $2,000 a day; weekly seasonality of several shapes (weekend dips, a
random weekday profile, one peak weekday, none); log-linear trends from -0.8% to +1.5% a day, some
changing slope mid-way; level shifts (x0.5 to x2); adoption ramps of new customers; multiplicative noise
from 3% to 35%, autocorrelated in some series; and one-day spikes. From each origin (every week from day
14, so short histories are scored too) the forecaster sees at most the history the job reads and
predicts the next `horizon` days. Scores: MASE (mean absolute error over the horizon divided by the
in-sample MAE of the one-week seasonal-naive forecast) of the model and of the seasonal-naive forecast
itself, their ratio (target below 0.8), and the 80%/95% interval coverage of the horizon's total; per
seed, so an improvement is seen to hold across data sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from tokentra_worker._forecast_model import forecast_days, seasonal_naive
from tokentra_worker.forecasts import HISTORY_DAYS

__all__ = ["backtest", "run", "synthetic_series"]

SHORT_DAYS = 28  # histories shorter than this are reported apart


def synthetic_series(n_series: int = 40, seed: int = 1) -> Iterator[np.ndarray]:  # noqa: C901
    rng = np.random.default_rng(seed)
    for _ in range(n_series):
        days = int(rng.integers(70, 141))
        t = np.arange(days)
        level = float(np.exp(rng.uniform(np.log(2), np.log(2000))))
        shape = rng.choice(["weekend", "profile", "flat", "peak"], p=[0.45, 0.3, 0.1, 0.15])
        if shape == "weekend":
            weekly = 1 - rng.uniform(0.1, 0.9) * np.array([0, 0, 0, 0, 0, 1, 1])
        elif shape == "profile":
            weekly = np.exp(rng.normal(0, rng.uniform(0.05, 0.4), 7))
        else:
            weekly = np.ones(7)
            if shape == "peak":
                weekly[int(rng.integers(0, 5))] *= rng.uniform(1.3, 2.5)
        season = weekly[(t + int(rng.integers(0, 7))) % 7]
        log_trend = (rng.uniform(-0.008, 0.015) if rng.random() < 0.7 else 0.0) * t
        if rng.random() < 0.2:  # the trend changes slope
            log_trend = log_trend + rng.uniform(-0.015, 0.015) * np.clip(t - int(rng.integers(20, days)), 0, None)
        shift = np.ones(days)
        if rng.random() < 0.3:
            shift[int(rng.integers(20, days)) :] = np.exp(rng.uniform(np.log(0.5), np.log(2)))
        ramp = np.ones(days)
        if rng.random() < 0.2:  # a new customer adopting, from a fraction of its eventual spend
            floor, middle, width = rng.uniform(0.05, 0.3), rng.uniform(5, 30), rng.uniform(2, 6)
            ramp = floor + (1 - floor) / (1 + np.exp(-(t - middle) / width))
        noise = rng.normal(0, rng.uniform(0.03, 0.35), days)
        if rng.random() < 0.3:  # autocorrelated noise: busy days come in runs
            phi = rng.uniform(0.3, 0.8)
            for i in range(1, days):
                noise[i] += phi * noise[i - 1]
            noise *= np.sqrt(1 - phi**2)
        spikes = np.ones(days)
        if rng.random() < 0.2:
            at = rng.choice(days, size=int(rng.integers(1, 4)), replace=False)
            spikes[at] = rng.uniform(2, 5, len(at))
        yield level * season * np.exp(log_trend + noise) * shift * ramp * spikes


def backtest(seed: int, horizon: int = 14, n_series: int = 40, step: int = 7, first_origin: int = 14) -> dict:
    """One seed's scores: MASE of the model and of seasonal naive, and interval coverage."""
    model_err, naive_err, short = [], [], []
    covered = {80: 0, 95: 0}
    for y in synthetic_series(n_series, seed):
        for origin in range(first_origin, len(y) - horizon + 1, step):
            past, future = y[max(0, origin - HISTORY_DAYS) : origin], y[origin : origin + horizon]
            scale = float(np.mean(np.abs(past[7:] - past[:-7])))
            f = forecast_days(past, horizon, seed=origin)
            model_err.append(float(np.mean(np.abs(f.mean - future))) / scale)
            naive_err.append(float(np.mean(np.abs(seasonal_naive(past, horizon) - future))) / scale)
            short.append(len(past) < SHORT_DAYS)
            totals = f.paths.sum(axis=1)
            for level, (lo, hi) in ((80, (10, 90)), (95, (2.5, 97.5))):
                covered[level] += bool(np.percentile(totals, lo) <= future.sum() <= np.percentile(totals, hi))
    m, n, s = np.array(model_err), np.array(naive_err), np.array(short)
    return {
        "seed": seed,
        "origins": len(m),
        "mase_model": round(float(m.mean()), 4),
        "mase_seasonal_naive": round(float(n.mean()), 4),
        "ratio": round(float(m.mean() / n.mean()), 4),
        "ratio_short_history": round(float(m[s].mean() / n[s].mean()), 4),
        "ratio_long_history": round(float(m[~s].mean() / n[~s].mean()), 4),
        "coverage_80": round(covered[80] / len(m), 4),
        "coverage_95": round(covered[95] / len(m), 4),
    }


def run(as_json: bool = False, horizon: int = 14, seeds: tuple[int, ...] = (11, 12, 13), n_series: int = 40) -> dict:
    per_seed = [backtest(seed, horizon, n_series) for seed in seeds]
    origins = sum(r["origins"] for r in per_seed)

    def pooled(key: str) -> float:
        return round(sum(r[key] * r["origins"] for r in per_seed) / origins, 4)

    out = {
        "series_per_seed": n_series,
        "horizon_days": horizon,
        "history_days": HISTORY_DAYS,
        "origins": origins,
        "mase_model": pooled("mase_model"),
        "mase_seasonal_naive": pooled("mase_seasonal_naive"),
        "coverage_80": pooled("coverage_80"),
        "coverage_95": pooled("coverage_95"),
        "per_seed": per_seed,
    }
    out["ratio_model_to_seasonal_naive"] = round(out["mase_model"] / out["mase_seasonal_naive"], 4)
    if as_json:
        print(json.dumps(out))
        return out
    print(
        f"rolling-origin backtest: {n_series} series x {len(seeds)} seeds, {origins} origins, {horizon}-day "
        f"horizon, at most {HISTORY_DAYS} days of history"
    )
    print(f"{'seed':>6s} {'origins':>8s} {'MASE model':>11s} {'MASE naive':>11s} {'ratio':>6s} "
          f"{'<4 weeks':>9s} {'longer':>7s} {'cover 80%':>10s} {'cover 95%':>10s}")
    for r in per_seed:
        print(
            f"{r['seed']:>6d} {r['origins']:>8d} {r['mase_model']:>11.3f} {r['mase_seasonal_naive']:>11.3f} "
            f"{r['ratio']:>6.3f} {r['ratio_short_history']:>9.3f} {r['ratio_long_history']:>7.3f} "
            f"{r['coverage_80']:>10.2f} {r['coverage_95']:>10.2f}"
        )
    print(
        f"{'all':>6s} {origins:>8d} {out['mase_model']:>11.3f} {out['mase_seasonal_naive']:>11.3f} "
        f"{out['ratio_model_to_seasonal_naive']:>6.3f} {'':>9s} {'':>7s} {out['coverage_80']:>10.2f} "
        f"{out['coverage_95']:>10.2f}"
    )
    print("target: ratio model / seasonal naive below 0.8; coverage near 0.80 and 0.95")
    return out
