"""The spend forecaster's numerics, shared by the worker job and `tokentra bench forecast`.

Daily spend with two or more weeks of history is modelled on a log scale (spend is multiplicative: a
busier week is busier every day) with weekly seasonality, by an equal-weight combination of three
forecasts that disagree about trends: Holt-Winters without trend (follows the level), Holt-Winters with a
damped trend, and a robust drift (Theil-Sen slope of the last weeks' deseasonalized means, damped).
Combining forecasts is the best-documented way to beat the single model chosen in advance (M3/M4), and
here it guards against betting on, or against, a trend. Intervals come from Holt-Winters' simulated future
paths, each path centred on one member drawn at random (so disagreement about the trend widens them),
scaled as a Student-t (the noise level is estimated from few days) and widened for what the simulation
ignores; paths give the intervals of any sum over the horizon (a
month-end total is a sum, so per-day intervals would not do).

Shorter histories (and series a seasonal model cannot fit) get the recent level: the mean of the last
week's whole days, with today's run rate as a fraction of a day more (on day one it is all there is).
Their intervals say how little is known: the day-to-day variation on a log scale is a prior (PRIOR_SIGMA,
spend varying by about half from day to day) pulled toward what the days seen show as they accumulate,
and the level itself is uncertain by that variation over the square root of the days seen; both as
Student-t draws, so a day of history gives wide intervals, never intervals equal to the point.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["Forecast", "forecast_days", "seasonal_naive"]

REPETITIONS = 1000
MIN_ETS_DAYS = 14
# Damping of both trend members: a trend is believed for about ten days, then fades (Gardner's range).
DAMPING = 0.9
DRIFT_WEEKS = 4
# The simulation knows the daily noise, not the uncertainty of the fitted level and season, nor level
# shifts to come: widen its spread. Calibrated on `tokentra bench forecast` development seeds (1, 2) to
# 80%/95% coverage of horizon totals, checked on the default seeds.
SPREAD = 1.15
# Parameters Holt-Winters estimates (level, season weights, initial level and seven weekday states):
# the noise level is itself estimated from len(history) - FITTED days, so paths get Student-t scales.
FITTED = 10
# Short histories: the day-to-day log-spend deviation assumed before any day is seen, the number of days
# that prior counts for, and the least part of a day whose run rate is taken as a level (an hour).
PRIOR_SIGMA = 0.5
PRIOR_DAYS = 4
MIN_RUN_RATE_DAY = 1 / 24


@dataclass
class Forecast:
    mean: np.ndarray  # central (median) spend per future day
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


def _fallback(
    history: np.ndarray, horizon: int, rng: np.random.Generator, today: float = 0.0, elapsed: float = 0.0
) -> Forecast:
    """The recent level with intervals widened for how few days it rests on (see the module docstring)."""
    recent = history[-7:]
    part = elapsed if elapsed >= MIN_RUN_RATE_DAY and today > 0 else 0.0
    seen = len(recent) + part  # days the level is estimated from
    if seen == 0:
        return Forecast(np.zeros(horizon), np.zeros((REPETITIONS, horizon)), "no spend yet")
    level = (float(recent.sum()) + (today if part else 0.0)) / seen
    if level <= 0:
        return Forecast(np.zeros(horizon), np.zeros((REPETITIONS, horizon)), f"no spend in the last {len(recent)} days")
    # Day-to-day variation: the prior, pulled toward the spread of the days with spend as they accumulate.
    logs = np.log(recent[recent > 0])
    observed = float(np.var(logs, ddof=1)) if len(logs) > 1 else 0.0
    dof = max(len(logs) - 1, 0)
    sigma = float(np.sqrt((PRIOR_DAYS * PRIOR_SIGMA**2 + dof * observed) / (PRIOR_DAYS + dof)))
    level_sigma = sigma / np.sqrt(max(seen, 0.25))
    t = max(dof, 2)
    level_draw = level_sigma * rng.standard_normal(REPETITIONS) * np.sqrt(t / rng.chisquare(t, REPETITIONS))
    daily = sigma * rng.standard_normal((REPETITIONS, horizon)) * np.sqrt(t / rng.chisquare(t, (REPETITIONS, 1)))
    # Log-normal draws centred so each path's expected spend is the level (sums are what budgets meet).
    paths = level * np.exp(level_draw[:, None] - level_sigma**2 / 2 + daily - sigma**2 / 2)
    basis = f"mean of the last {len(recent)} days" if len(recent) else "today's run rate"
    if len(recent) and part:
        basis += " and today's run rate"
    return Forecast(np.full(horizon, level), np.clip(paths, 0, None), f"{basis} (short history: prior day-to-day "
                    f"variation {PRIOR_SIGMA:.0%} on a log scale, intervals widened for {seen:.2g} days seen)")


def _weekday_effects(z: np.ndarray) -> np.ndarray:
    """Additive effect of each position in the week (index = day % 7), from the median deviation around
    a centred 7-day mean, so one unusual day does not become a weekly pattern."""
    n = len(z)
    around = np.convolve(z, np.ones(7) / 7, mode="same")
    inside = np.zeros(n, dtype=bool)
    inside[3 : n - 3] = True
    position = np.arange(n) % 7
    effects = np.array(
        [np.median((z - around)[inside & (position == k)]) if (inside & (position == k)).any() else 0.0
         for k in range(7)]
    )
    return effects - effects.mean()


def _drift(z: np.ndarray, horizon: int) -> np.ndarray:
    """The last week's deseasonalized mean moved along the median slope between the last weeks' means."""
    effects = _weekday_effects(z)
    flat = z - effects[np.arange(len(z)) % 7]
    weeks = min(DRIFT_WEEKS, len(z) // 7)
    means = flat[len(z) - 7 * weeks :].reshape(weeks, 7).mean(axis=1)
    i, j = np.triu_indices(weeks, 1)
    slope = float(np.median((means[j] - means[i]) / (7.0 * (j - i)))) if weeks >= 2 else 0.0
    steps = np.cumsum(DAMPING ** np.arange(1, horizon + 1))
    level = means[-1] + 3.5 * slope  # the last week's mean sits at its middle day
    return level + slope * steps + effects[(len(z) + np.arange(horizon)) % 7]


def _members(z: np.ndarray, horizon: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Holt-Winters' simulated log deviations (repetitions, horizon) and each member's central log forecast."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = ExponentialSmoothing(z, seasonal="add", seasonal_periods=7, initialization_method="estimated").fit()
        sims = level.simulate(horizon, repetitions=REPETITIONS, anchor="end", error="add", random_state=seed)
        sims = np.asarray(sims).reshape(horizon, REPETITIONS).T
        centres = {"Holt-Winters": np.asarray(level.forecast(horizon))}
        sims = sims - centres["Holt-Winters"]
        try:
            damped = ExponentialSmoothing(
                z, trend="add", damped_trend=True, seasonal="add", seasonal_periods=7,
                initialization_method="estimated",
            ).fit(damping_trend=DAMPING, use_brute=False)
            centres["damped-trend Holt-Winters"] = np.asarray(damped.forecast(horizon))
        except (ValueError, np.linalg.LinAlgError):
            pass  # the other members still make a combination
    centres["robust drift"] = _drift(z, horizon)
    return sims, {name: c for name, c in centres.items() if np.isfinite(c).all()}


def forecast_days(history, horizon: int, seed: int = 0, today: float = 0.0, elapsed: float = 0.0) -> Forecast:
    """Spend for each of the next `horizon` days after `history` (whole days' totals, oldest first).
    `today` is what the day in progress spent so far, `elapsed` the part of it gone (0..1): a short
    history's level counts it (on day one it is the only evidence)."""
    y = np.asarray(history, dtype=float)
    rng = np.random.default_rng(seed)
    if horizon <= 0:
        return Forecast(np.zeros(0), np.zeros((REPETITIONS, 0)), "none")
    if len(y) < MIN_ETS_DAYS or np.ptp(y[-MIN_ETS_DAYS:]) == 0:
        return _fallback(y, horizon, rng, today, elapsed)
    offset = max(0.01 * float(np.median(y)), 1e-6)
    try:
        sims, centres = _members(np.log(y + offset), horizon, seed)
    except (ValueError, np.linalg.LinAlgError):
        return _fallback(y, horizon, rng, today, elapsed)
    if not centres or not np.isfinite(sims).all():
        return _fallback(y, horizon, rng, today, elapsed)
    members = np.asarray(list(centres.values()))
    drawn = members[rng.integers(0, len(members), REPETITIONS)]
    dof = max(len(y) - FITTED, 3)
    scales = SPREAD * np.sqrt(dof / rng.chisquare(dof, REPETITIONS))[:, None]
    paths = np.exp(drawn + scales * sims) - offset
    return Forecast(
        np.clip(np.exp(members.mean(axis=0)) - offset, 0, None),
        np.clip(paths, 0, None),
        f"combination of log-spend forecasts with weekly seasonality: {', '.join(centres)}",
    )
