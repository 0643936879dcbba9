"""The anomaly detector's numerics, shared by the worker job and `tokentra bench anomalies`.

A series is split into a seasonal part (robust STL at the daily period, plus the weekly profile of what
is left when the series is long enough) and a deseasonalized rest. Each point is compared with the
median of the rest over a trailing window (so a level shift is flagged at its start, until the window
has moved onto the new level) and scored in robust units: the MAD of those deviations, scaled to a
standard deviation. Points scoring above the threshold, in the direction that matters for the metric,
are grouped into incidents: one per episode, not one per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Incident", "detect", "seasonal_component"]

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Incident:
    start: int  # index of the first anomalous point
    end: int  # index of the last anomalous point (inclusive)
    peak: int  # index of the highest score
    score: float  # the peak's robust z-score (signed)
    expected: list[float]  # baseline per point of the incident
    kind: str  # "spike" or "level_shift"


def _phase_median(x: np.ndarray, period: int) -> np.ndarray:
    """Per-phase median profile, centred, repeated over the series."""
    n = len(x)
    prof = np.array([np.median(x[p::period]) for p in range(period)])
    prof = prof - np.median(prof)
    return np.resize(prof, n)


def _centred_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the `window` points around each point (edges: of what exists)."""
    from numpy.lib.stride_tricks import sliding_window_view

    n = len(x)
    if n <= window:
        return np.full(n, np.median(x))
    half = window // 2
    core = np.median(sliding_window_view(x, window), axis=1)
    out = np.empty(n)
    out[half : half + len(core)] = core
    out[:half] = core[0]
    out[half + len(core) :] = core[-1]
    return out


def seasonal_component(x: np.ndarray, period: int | None, weekly: int | None = None) -> np.ndarray:
    """Seasonality of x: the median profile per hour of the week where three weeks exist, else per
    phase of the day, taken after removing a centred running median (so trends and shifts do not leak
    in); zeros where the profile explains too little to be more than noise."""
    n = len(x)
    for cycle in (weekly, period):
        if cycle and cycle >= 2 and n >= 3 * cycle:
            rest = x - _centred_median(x, cycle)
            season = _phase_median(rest, cycle)
            if np.var(season) > 0.05 * np.var(rest):
                return season
    return np.zeros(n)


def _trailing_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the `window` points before each point (first points: of what exists)."""
    n = len(x)
    out = np.empty(n)
    out[0] = x[0]
    if n > window:
        from numpy.lib.stride_tricks import sliding_window_view

        out[window:] = np.median(sliding_window_view(x, window)[:-1], axis=1)
    for i in range(1, min(window, n)):
        out[i] = np.median(x[:i])
    return out


def detect(
    values,
    period: int | None = None,
    weekly: int | None = None,
    *,
    threshold: float = 6.0,
    direction: str = "both",
    window: int | None = None,
    warmup: int | None = None,
    gap: int | None = None,
    min_scale: float = 0.0,
    log: bool = True,
) -> list[Incident]:
    """Incidents in a series. `direction` is "up", "down" or "both"; `window` is the trailing baseline
    (default one period or 24 points); points before `warmup` are never flagged."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 8 or not np.isfinite(x).all():
        x = np.nan_to_num(x)
        if n < 8:
            return []
    window = window or max(8, min(period or 24, 168))
    warmup = window if warmup is None else warmup
    gap = gap if gap is not None else window
    offset = None
    if log and x.min() >= 0:
        # Spend is multiplicative: noise grows with the level, so work on a log scale.
        offset = max(0.05 * float(np.median(x)), 1e-6)
        x = np.log(x + offset)
    season = seasonal_component(x, period, weekly)
    rest = x - season
    base = _trailing_median(rest, window)
    dev = rest - base
    mad = float(np.median(np.abs(dev[warmup:] - np.median(dev[warmup:])))) if n > warmup else 0.0
    scale = max(MAD_TO_SIGMA * mad, min_scale, 1e-9 * max(1.0, float(np.abs(x).mean())))
    if mad == 0:
        # A flat series: any move is news, but a relative one (a tenth of its level) is needed.
        scale = max(scale, 0.1 * float(np.abs(np.median(x))) / threshold, 1e-9)
    z = dev / scale
    if direction == "up":
        hit = z > threshold
    elif direction == "down":
        hit = z < -threshold
    else:
        hit = np.abs(z) > threshold
    hit[:warmup] = False
    incidents: list[Incident] = []
    idx = np.flatnonzero(hit)
    if not len(idx):
        return incidents
    groups: list[list[int]] = [[int(idx[0])]]
    for i in idx[1:]:
        if i - groups[-1][-1] <= gap + 1:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    for g in groups:
        start, end = g[0], g[-1]
        peak = max(g, key=lambda i: abs(z[i]))
        expected_t = (season + base)[start : end + 1]
        # Log-scaled series are non-negative: the back-transformed baseline must not dip below zero.
        expected = (np.maximum(np.exp(expected_t) - offset, 0.0) if offset is not None else expected_t).tolist()
        # A level shift: the points after the run stay away from the old baseline.
        after = rest[end + 1 : end + 1 + window]
        shifted = len(g) >= max(3, window // 4) or (
            len(after) >= 3 and abs(np.median(after) - base[start]) > threshold * scale / 2
        )
        incidents.append(
            Incident(start, end, peak, float(z[peak]), expected, "level_shift" if shifted else "spike")
        )
    return incidents
