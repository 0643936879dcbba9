"""The anomaly detector's numerics, shared by the worker job and `tokentra bench anomalies`.

A series is split into a seasonal part (the median profile per hour of the week or phase of the day,
when it explains enough) and a deseasonalized rest. Each point is compared with the median of the rest
over a trailing window (so a level shift is flagged at its start, until the window has moved onto the
new level). Two channels look at that deviation: the point itself, and its mean over a short trailing
span (a sustained move: a shift or a change of regime that no single point gives away). A channel fires
when its deviation is both large in robust units (the MAD of its own past, scaled to a standard
deviation) and new: larger, by a margin, than any deviation the series has shown before in that
direction. Noisy series spike all the time; an alert someone reads is only worth it for what the
history has not already shown to be normal. The scale and that bar come from the points before the
one scored, less those that fired themselves (so one incident does not hide the next). Firing points
are grouped into incidents: one per episode, not one per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Incident", "Scores", "detect", "incidents", "scores", "seasonal_component"]

MAD_TO_SIGMA = 1.4826
# Defaults: what leave-one-folder-out validation on labelled benchmark series chose on every folder
# (scored causally it now prefers a 10% point margin; 20% is kept, as it alarms less). A point must
# beat the largest deviation seen before by 20% and be 6 robust sigmas (the threshold, set by the
# caller) out; a sustained move must beat it by 5% and be 6 sigmas of its own (averaged, so quieter)
# scale out.
NOVELTY = 1.2
SUSTAINED_THRESHOLD = 6.0
SUSTAINED_NOVELTY = 1.05
# The sustained channel averages over a twelfth of the baseline window (two hours of five-minute points).
SUSTAIN_FRACTION = 12
# Cycles of past a seasonal profile needs: three for the daily one (a median of three shrugs off one odd
# day); two for the weekly one, or a young series would read its second Monday as news. A median of two
# weeks is their mean, noisier, and the profile's significance test weighs exactly that.
DAILY_CYCLES = 3
WEEKLY_CYCLES = 2


@dataclass(frozen=True)
class Incident:
    start: int  # index of the first anomalous point
    end: int  # index of the last anomalous point (inclusive)
    peak: int  # index of the highest score
    score: float  # the peak's robust z-score (signed)
    expected: list[float]  # baseline per point of the incident
    kind: str  # "spike" or "level_shift"


@dataclass(frozen=True)
class Scores:
    """What the detector computes once per series; `incidents` turns it into alarms at any setting."""

    x: np.ndarray  # the series as analysed (log scale when `log`)
    offset: float | None  # the log offset, None when not on a log scale
    season: np.ndarray
    rest: np.ndarray
    base: np.ndarray
    dev: np.ndarray  # rest less its trailing median: the point channel
    sustained: np.ndarray | None  # dev's trailing mean over a short span: the sustained channel
    window: int
    ready: int  # the first point that may be flagged: its seasonal profile and every weekday are known
    settled: int  # the first point whose weekly profile is known (before: each weekday seen only once)


def _centred_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the `window` points around each point (edges: of what exists)."""
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
    """Seasonality of x (see `_profiles`), as one series."""
    season = np.zeros(len(x))
    for start, stop, prof in _profiles(x, period, weekly):
        if prof is not None:
            season[start:stop] = prof[np.arange(start, stop) % len(prof)]
    return season


def _profiles(x: np.ndarray, period: int | None, weekly: int | None = None) -> list[tuple[int, int, np.ndarray | None]]:
    """Spans of x with the seasonal profile each is scored with. Each day's points get the profile of the
    points strictly before that day (so a point's baseline never uses what comes after it): the median
    per hour of the week where two weeks exist, else per phase of the day where three days exist,
    taken after removing a centred running median (so trends and shifts do not leak in); zeros where the
    profile explains too little to be more than noise. Before three cycles of past, nothing is known and
    the points take the first profile (they are never flagged, only compared with)."""
    n = len(x)
    cycles = [c for c in (weekly, period) if c and c >= 2]
    if not cycles:
        return [(0, n, None)]
    need = {c: WEEKLY_CYCLES * c if c == weekly else DAILY_CYCLES * c for c in cycles}
    ready = min(need.values())
    spans: list[tuple[int, int, np.ndarray | None]] = [(0, min(ready, n), None)]
    step = min(cycles)
    # The centred running median of a prefix equals the whole series' up to half a cycle before the
    # prefix's end (each value reads only points inside the prefix), then repeats its last exact value.
    centred = {c: _centred_median(x, c) for c in cycles if n > need[c]}
    for start in range(ready, n, step):
        found = None
        for c in cycles:
            if start < need[c] or c not in centred:
                continue
            last = start - c + c // 2
            trend = centred[c][:start].copy()
            trend[last + 1 :] = centred[c][last]
            rest = x[:start] - trend
            full = (start // c) * c
            cells = rest[:full].reshape(-1, c)
            prof = np.median(cells, axis=0)
            # A median of k noisy cycles varies by about pi/2 * noise / k on its own: with few cycles
            # behind a point, a profile must stand well clear of that to be more than noise.
            noise = float(np.var(cells - prof)) * np.pi / 2 / len(cells)
            prof = prof - np.median(prof)
            if np.var(prof) > max(0.05 * np.var(rest), 2 * noise):
                found = prof
                break
        spans.append((start, min(n, start + step), found))
    if len(spans) > 1:
        # The points before are never scored, only compared with: they take the first profile.
        spans[0] = (0, ready, spans[1][2])
    return spans


def _trailing_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the `window` points before each point (first points: of what exists)."""
    n = len(x)
    out = np.empty(n)
    if not n:
        return out
    out[0] = x[0]
    if n > window:
        out[window:] = np.median(sliding_window_view(x, window)[:-1], axis=1)
    for i in range(1, min(window, n)):
        out[i] = np.median(x[:i])
    return out


def scores(
    values,
    period: int | None = None,
    weekly: int | None = None,
    *,
    window: int | None = None,
    log: bool = True,
) -> Scores:
    """The deviations of a series from its seasonal baseline, for `incidents`."""
    x = np.nan_to_num(np.asarray(values, dtype=float))
    window = window or max(8, min(period or 24, 168))
    cycles = [c for c in (weekly, period) if c and c >= 2]
    ready = min(DAILY_CYCLES * c if c != weekly else WEEKLY_CYCLES * c for c in cycles) if cycles else 0
    if weekly and weekly >= 2:
        # Until a whole week, and a baseline window before its first point, is behind a point, some
        # weekday has not been seen yet after the days before it: the first Monday after a quiet weekend
        # would read as news (a daily profile cannot know it). Once seen, it is part of the past the
        # novelty bar is set by, and from two weeks on the weekly profile explains it.
        ready = max(ready, weekly + window)
    # Nothing is flagged before the profile is known, so what sets the log offset may come from those
    # points without any point that may be flagged seeing its own future.
    head = x[: max(ready, window)]
    offset = None
    if log and len(x) and x.min() >= 0:
        # Spend is multiplicative: noise grows with the level, so work on a log scale (the offset keeps
        # zeros finite: a twentieth of the early level, of its non-zero points if mostly zeros).
        typical = float(np.median(head))
        if typical <= 0 and (head > 0).any():
            typical = float(np.median(head[head > 0]))
        offset = max(0.05 * typical, 1e-6)
        x = np.log(x + offset)
    season = np.zeros(len(x))
    base = np.zeros(len(x))
    for start, stop, prof in _profiles(x, period, weekly):
        # The baseline of a span is the trailing median of the points before it, deseasonalised with
        # the span's own profile (so a new profile does not read as a move against the old one).
        lo = max(0, start - window)
        idx = np.arange(lo, stop)
        shape = prof[idx % len(prof)] if prof is not None else np.zeros(len(idx))
        base[start:stop] = _trailing_median(x[lo:stop] - shape, window)[start - lo :]
        season[start:stop] = shape[start - lo :]
    rest = x - season
    dev = rest - base
    # A sustained move is one of three points or more.
    k = max(3, window // SUSTAIN_FRACTION)
    sustained = None
    if len(dev) > 2 * k:
        sustained = np.convolve(dev, np.ones(k) / k)[: len(dev)]
        sustained[: k - 1] = np.cumsum(dev[: k - 1]) / np.arange(1, k)
    settled = max(ready, WEEKLY_CYCLES * weekly) if weekly and weekly >= 2 else ready
    return Scores(x, offset, season, rest, base, dev, sustained, window, ready, settled)


def _median(a: np.ndarray) -> float:
    """np.median without its generality, which costs more than the work on a few hundred points."""
    h = len(a) // 2
    if len(a) % 2:
        return float(np.partition(a, h)[h])
    p = np.partition(a, (h - 1, h))
    return float(p[h - 1] + p[h]) / 2


def _firing(
    s: Scores,
    channels: list[tuple[np.ndarray, float, float]],
    direction: str,
    min_scale: float,
    warmup: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points where a channel fires, and the point channel's robust z-scores and scales. Blocks of a quarter
    window are scored in order against the past as of their start; points that fired are left out of
    the past, so one incident does not raise the bar for the next."""
    n = len(s.dev)
    step = max(1, s.window // 4)
    hit = np.zeros(n, dtype=bool)
    z = np.zeros(n)
    sigma = np.ones(n)
    # The past of each channel that did not fire, kept in order, with its extremes.
    kept = [np.empty(n) for _ in channels]
    count = [0] * len(channels)
    high = [-np.inf] * len(channels)
    low = [np.inf] * len(channels)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = np.zeros(stop - start, dtype=bool)
        point = np.zeros(stop - start)
        for c, (d, threshold, novelty) in enumerate(channels):
            if start < s.settled:
                # Each weekday has been seen once: a sustained move's small margin presumes a past that
                # has shown its extremes many times; against one sample it must beat it as a point does.
                novelty = max(novelty, channels[0][2])
            if count[c]:
                past, top, bottom = kept[c][: count[c]], high[c], low[c]
            else:
                past = d[: max(start, 1)]
                top, bottom = float(past.max()), float(past.min())
            m = _median(past)
            scale = MAD_TO_SIGMA * _median(np.abs(past - m))
            up, down = top - m, m - bottom
            if direction == "both":
                # Watching both ways, a move must be new in size whichever way it goes; watching one,
                # only that side of the past sets the bar (a dip to zero does not hide a later surge).
                up = down = max(up, down)
            dev = d[start:stop] - m
            # Where the past is flat, any move is news, but a relative one (a tenth of the past level).
            floor = 0.0 if scale > 0 else 0.1 * abs(_median(s.x[: max(start, 1)]))
            scale = max(scale, min_scale)
            fire_up = dev > max(threshold * scale, novelty * up, floor)
            fire_down = -dev > max(threshold * scale, novelty * down, floor)
            if c == 0:
                z[start:stop] = dev / scale
                sigma[start:stop] = scale
                point = dev
            else:
                # A sustained move fires only while the point itself is still out there: once a spike
                # is over, its echo in the mean must not keep the incident open.
                fire_up &= point >= dev / 2
                fire_down &= point <= dev / 2
            block |= fire_up if direction == "up" else fire_down if direction == "down" else fire_up | fire_down
        block[: max(0, min(stop, warmup) - start)] = False
        hit[start:stop] = block
        for c, (d, _, _) in enumerate(channels):
            quiet = d[start:stop][~block]
            if len(quiet):
                kept[c][count[c] : count[c] + len(quiet)] = quiet
                count[c] += len(quiet)
                high[c] = max(high[c], float(quiet.max()))
                low[c] = min(low[c], float(quiet.min()))
    return hit, z, sigma


def incidents(
    s: Scores,
    *,
    threshold: float = 6.0,
    novelty: float = NOVELTY,
    sustained_threshold: float = SUSTAINED_THRESHOLD,
    sustained_novelty: float = SUSTAINED_NOVELTY,
    direction: str = "both",
    warmup: int | None = None,
    gap: int | None = None,
    min_scale: float = 0.0,
) -> list[Incident]:
    """Incidents of a scored series. `direction` is "up", "down" or "both"; points before `warmup`
    (default: one baseline window), or before the seasonal profile is known (with a weekly cycle: before
    a whole week and a baseline window are behind them), are never flagged; firing points closer than
    `gap` are one incident. Whether a point fires depends only on the points up to it; only an incident's
    kind looks at the points after its run."""
    n = len(s.x)
    if n < 8:
        return []
    window = s.window
    warmup = max(window if warmup is None else warmup, s.ready)
    gap = gap if gap is not None else window
    min_scale = max(min_scale, 1e-9 * max(1.0, float(np.abs(s.x[:warmup]).mean())))
    channels = [(s.dev, threshold, novelty)]
    if s.sustained is not None:
        channels.append((s.sustained, sustained_threshold, sustained_novelty))
    hit, z, sigma = _firing(s, channels, direction, min_scale, warmup)
    idx = np.flatnonzero(hit)
    out: list[Incident] = []
    if not len(idx):
        return out
    groups: list[list[int]] = [[int(idx[0])]]
    for i in idx[1:]:
        if i - groups[-1][-1] <= gap + 1:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    scale = float(np.median(sigma[warmup:])) if n > warmup else min_scale
    for g in groups:
        start, end = g[0], g[-1]
        peak = max(g, key=lambda i: abs(z[i]))
        expected_t = (s.season + s.base)[start : end + 1]
        # Log-scaled series are non-negative: the back-transformed baseline must not dip below zero.
        expected = (np.maximum(np.exp(expected_t) - s.offset, 0.0) if s.offset is not None else expected_t).tolist()
        # A level shift: the points after the run stay away from the old baseline.
        after = s.rest[end + 1 : end + 1 + window]
        shifted = len(g) >= max(3, window // 4) or (
            len(after) >= 3 and abs(np.median(after) - s.base[start]) > threshold * scale / 2
        )
        out.append(Incident(start, end, peak, float(z[peak]), expected, "level_shift" if shifted else "spike"))
    return out


def detect(
    values,
    period: int | None = None,
    weekly: int | None = None,
    *,
    threshold: float = 6.0,
    novelty: float = NOVELTY,
    sustained_threshold: float = SUSTAINED_THRESHOLD,
    sustained_novelty: float = SUSTAINED_NOVELTY,
    direction: str = "both",
    window: int | None = None,
    warmup: int | None = None,
    gap: int | None = None,
    min_scale: float = 0.0,
    log: bool = True,
) -> list[Incident]:
    """Incidents in a series. `window` is the trailing baseline (default one period or 24 points)."""
    return incidents(
        scores(values, period, weekly, window=window, log=log),
        threshold=threshold,
        novelty=novelty,
        sustained_threshold=sustained_threshold,
        sustained_novelty=sustained_novelty,
        direction=direction,
        warmup=warmup,
        gap=gap,
        min_scale=min_scale,
    )
