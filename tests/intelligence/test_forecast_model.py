"""The forecaster's numerics: the combination follows trends, intervals are calibrated on the bench's
varied series and honest about short histories; `tokentra bench forecast` refuses bad seeds."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from tokentra_cli.cli import app
from tokentra_dev.bench_forecast import backtest
from tokentra_worker._forecast_model import forecast_days, seasonal_naive

WEEK = np.array([10, 10, 10, 10, 10, 4, 4], dtype=float)


def test_combination_follows_a_growing_series_better_than_last_week():
    t = np.arange(42 + 14)
    truth = np.tile(WEEK, 8) * np.exp(0.02 * t)  # +2% a day
    y = truth * np.random.default_rng(1).lognormal(0, 0.05, len(t))
    f = forecast_days(y[:42], 14)
    assert f.method.startswith("combination") and "damped-trend Holt-Winters" in f.method
    assert "robust drift" in f.method
    model = np.abs(f.mean - truth[42:]).mean()
    naive = np.abs(seasonal_naive(y[:42], 14) - truth[42:]).mean()
    assert model < 0.75 * naive
    # The trend goes on (damped): the second week is forecast above the first, as it will be.
    assert f.mean[7:].sum() > 1.02 * f.mean[:7].sum()
    # The forecast keeps the weekly shape: weekend days stay below weekdays.
    assert f.mean[5] < 0.6 * f.mean[4]


def test_intervals_cover_horizon_totals_on_varied_series():
    scores = backtest(seed=5, n_series=8)
    assert scores["origins"] > 50
    assert scores["ratio"] < 1.0  # beats seasonal naive on series it was never tuned on
    assert 0.7 <= scores["coverage_80"] <= 0.95
    assert 0.85 <= scores["coverage_95"] <= 1.0


def test_short_histories_get_wider_intervals():
    def relative_width(days: int) -> float:
        widths = []
        for seed in range(6):
            y = np.resize(WEEK, 56) * np.random.default_rng(seed).lognormal(0, 0.15, 56)
            totals = forecast_days(y[-days:], 14, seed=seed).paths.sum(axis=1)
            lo, mid, hi = np.percentile(totals, [2.5, 50, 97.5])
            widths.append((hi - lo) / mid)
        return float(np.mean(widths))

    assert relative_width(15) > 1.1 * relative_width(56)


def test_bench_forecast_names_a_bad_seed():
    result = CliRunner().invoke(app, ["bench", "forecast", "--seeds", "11,x"])
    assert result.exit_code == 2
    assert "--seeds" in result.output and "integers" in result.output
