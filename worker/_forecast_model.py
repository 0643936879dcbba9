"""The spend forecaster's numerics, shared by the worker job and `tokentra bench forecast`.

Daily spend with two or more weeks of history: Holt-Winters exponential smoothing of log spend with
additive weekly seasonality (statsmodels; measured against ETS with a damped trend and a seasonal-profile
model on the bench, it was as accurate and four to ten times faster); its simulated future paths give the
intervals of any sum over the horizon (a month-end total is a sum, so per-day intervals would not do).
Shorter histories fall back to the mean of the last week, with bootstrapped daily deviations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["Forecast", "forecast_days", "seasonal_naive"]

REPETITIONS = 1000
MIN_ETS_DAYS = 14
SPREAD = 1.4


@dataclass
class Forecast:
    mean: np.ndarray  # expected spend per future day
    paths: np.ndarray  # simulated spend, shape (repetitions, horizon), never negative
    method: str


def seasonal_naive(history: np.ndarray, horizon: int, period: int = 7) -> np.ndarray:
    """The same weekday last week, repeated: the baseline every forecast is scored against."""
    last = (
        history[-period:]
        if len(history) >= period
        else np.full(period, history.mean() if len(history) else 0)
    )
    return np.resize(last, horizon)


def _fallback(history: np.ndarray, horizon: int, rng: np.random.Generator) -> Forecast:
    recent = history[-7:] if len(history) else np.zeros(1)
    level = float(recent.mean())
    spread = recent - level if len(recent) > 1 else np.array([-0.3 * level, 0.3 * level])
    paths = np.clip(level + rng.choice(spread, size=(REPETITIONS, horizon)), 0, None)
    return Forecast(np.full(horizon, level), paths, f"mean of the last {len(recent)} days")


def forecast_days(history, horizon: int, seed: int = 0) -> Forecast:
    """Spend for each of the next `horizon` days after `history` (daily totals, oldest first)."""
    y = np.asarray(history, dtype=float)
    rng = np.random.default_rng(seed)
    if horizon <= 0:
        return Forecast(np.zeros(0), np.zeros((REPETITIONS, 0)), "none")
    if len(y) < MIN_ETS_DAYS or np.ptp(y[-MIN_ETS_DAYS:]) == 0:
        return _fallback(y, horizon, rng)
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    # Spend is multiplicative (a busier week is busier every day): model it on a log scale.
    offset = max(0.01 * float(np.median(y)), 1e-6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(
                np.log(y + offset), seasonal="add", seasonal_periods=7, initialization_method="estimated"
            ).fit()
            logs = (
                np.asarray(
                    fit.simulate(
                        horizon, repetitions=REPETITIONS, anchor="end", error="add", random_state=seed
                    )
                )
                .reshape(horizon, REPETITIONS)
                .T
            )
            centre = np.asarray(fit.forecast(horizon))
            mean = np.exp(centre) - offset
            # The simulation knows the noise but not the uncertainty of the fitted level and season, nor
            # level shifts to come: widen its spread (factor calibrated on `tokentra bench forecast`).
            paths = np.exp(centre + SPREAD * (logs - centre)) - offset
    except (ValueError, np.linalg.LinAlgError):
        return _fallback(y, horizon, rng)
    if not np.isfinite(mean).all():
        return _fallback(y, horizon, rng)
    return Forecast(
        np.clip(mean, 0, None),
        np.clip(paths.reshape(REPETITIONS, horizon), 0, None),
        "exponential smoothing of log spend, weekly seasonality",
    )
