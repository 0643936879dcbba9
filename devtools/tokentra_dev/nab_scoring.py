"""NAB's scoring, reimplemented for `tokentra bench anomalies`, and NAB's windowed-Gaussian detector.

The rules, as the benchmark defines them:

- Each point of a file gets an anomaly score in [0, 1]; at a threshold, every point scoring at or above
  it is a detection. Points in the probationary period (the first 15% of a file, at most 750 points)
  are not scored at all.
- A window is found by its earliest detection, rewarded by a scaled sigmoid of where in the window it
  falls: A_TP at the window's first point, falling to about zero at its last. Later detections in the
  same window add nothing. A window with no detection costs A_FN.
- Every detection outside all windows costs A_FP, scaled by the same sigmoid of its distance past the
  end of the previous window in window lengths (cheap right after a window, the full A_FP from about
  one window length on, and in full before the first window).
- A detector's raw score is the sum over files at the one threshold that maximises it over the corpus;
  it is normalised as 100 * (raw - null) / (perfect - null), where null is the score of a detector that
  never fires (minus A_FN per scored window) and perfect is A_TP per window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "PROFILES",
    "FileScores",
    "Profile",
    "Result",
    "best_threshold",
    "normalised",
    "probation_length",
    "scaled_sigmoid",
    "score_at",
    "sweep_file",
    "windowed_gaussian",
]


@dataclass(frozen=True)
class Profile:
    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile(tp=1.0, fp=0.11, fn=2.0),
}
PROBATION = 0.15


def probation_length(n: int, percent: float = PROBATION) -> int:
    """Points at the start of a file that are never scored."""
    return int(min(math.floor(percent * n), percent * 5000))


def scaled_sigmoid(position: float) -> float:
    """-1 is a window's first point (0.987), 0 its last (0), +1 one window length past it (-0.987)."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass
class FileScores:
    """One file prepared for scoring: per scorable point, its anomaly score, the window it is in (-1:
    none) and the weighted score it earns if it is a detection; plus how many windows are scored."""

    scores: np.ndarray
    window: np.ndarray
    weight: np.ndarray
    windows: int
    window_ids: list[int] = field(default_factory=list)


def _window_bounds(n: int, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted((max(0, a), min(n - 1, b)) for a, b in windows if b >= a and a < n and b >= 0)


def sweep_file(anomaly: np.ndarray, windows: list[tuple[int, int]], profile: Profile) -> FileScores:
    """Weighted score of each point as a detection. `windows` are inclusive index ranges."""
    n = len(anomaly)
    bounds = _window_bounds(n, windows)
    max_tp = scaled_sigmoid(-1.0)
    weight = np.empty(n)
    window = np.full(n, -1, dtype=int)
    prev_right: int | None = None
    prev_width = 0.0
    cursor = 0
    for w, (a, b) in enumerate(bounds):
        # Points between the previous window (or the start) and this one: false positives.
        for i in range(cursor, a):
            pos = 3.0 if prev_right is None else abs(prev_right - i) / max(prev_width - 1, 1.0)
            weight[i] = scaled_sigmoid(pos) * profile.fp
        width = float(b - a + 1)
        for i in range(a, b + 1):
            weight[i] = scaled_sigmoid(-(b - i + 1) / width) * profile.tp / max_tp
            window[i] = w
        prev_right, prev_width, cursor = b, width, b + 1
    for i in range(cursor, n):
        pos = 3.0 if prev_right is None else abs(prev_right - i) / max(prev_width - 1, 1.0)
        weight[i] = scaled_sigmoid(pos) * profile.fp
    start = probation_length(n)
    scored = window[start:]
    ids = sorted({int(w) for w in scored if w >= 0})
    return FileScores(np.asarray(anomaly, dtype=float)[start:], scored, weight[start:], len(ids), ids)


@dataclass(frozen=True)
class Result:
    threshold: float
    raw: float
    tp: int  # windows found
    fn: int  # windows missed
    fp: int  # detections outside every window


def score_at(files: list[FileScores], threshold: float, profile: Profile) -> Result:
    """Raw score of a set of files at one threshold."""
    raw = 0.0
    tp = fn = fp = 0
    for f in files:
        hit = f.scores >= threshold
        outside = hit & (f.window < 0)
        fp += int(outside.sum())
        raw += float(f.weight[outside].sum())
        for w in f.window_ids:
            inside = np.flatnonzero(hit & (f.window == w))
            if len(inside):
                tp += 1
                raw += float(f.weight[inside].max())
            else:
                fn += 1
                raw -= profile.fn
    return Result(threshold, raw, tp, fn, fp)


def best_threshold(files: list[FileScores], profile: Profile) -> Result:
    """The threshold that maximises the raw score over these files, as NAB's optimiser chooses it: every
    distinct anomaly score is a candidate, above the highest one nothing is detected."""
    pts = [
        (s, wt, (k, int(w)))
        for k, f in enumerate(files)
        for s, w, wt in zip(f.scores.tolist(), f.window.tolist(), f.weight.tolist(), strict=True)
    ]
    pts.sort(key=lambda p: -p[0])
    windows = sum(f.windows for f in files)
    best_score: dict[tuple[int, int], float] = {}
    fp_sum = 0.0
    fp = 0
    tp_sum = 0.0
    best = Result(1.1, -windows * profile.fn, 0, windows, 0)
    i = 0
    while i < len(pts):
        level = pts[i][0]
        while i < len(pts) and pts[i][0] == level:
            _, wt, (k, w) = pts[i]
            if w < 0:
                fp_sum += wt
                fp += 1
            else:
                old = best_score.get((k, w))
                if old is None:
                    best_score[(k, w)] = wt
                    tp_sum += wt
                elif wt > old:
                    best_score[(k, w)] = wt
                    tp_sum += wt - old
            i += 1
        found = len(best_score)
        raw = fp_sum + tp_sum - (windows - found) * profile.fn
        if raw > best.raw:
            best = Result(level, raw, found, windows - found, fp)
    return best


def normalised(raw: float, windows: int, profile: Profile) -> float | None:
    """NAB's 0-100 scale: the never-firing detector scores 0, a detector finding every window at its
    first point 100. Undefined without windows."""
    null = -windows * profile.fn
    perfect = windows * profile.tp
    if perfect == null:
        return None
    return 100.0 * (raw - null) / (perfect - null)


def windowed_gaussian(values, window: int = 6400, step: int = 100) -> np.ndarray:
    """NAB's windowed-Gaussian detector: each point scored by the two-sided tail of a normal fitted to
    the points before it (the first `window` points, then a window advanced `step` points at a time).
    Anomaly score 1 - Q(|z|), so 0.5 at the mean and close to 1 far from it."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    out = np.zeros(n)
    if n < 2:
        return out
    # While the window fills, point i is scored against all points before it: running sums (of the
    # values less the first, so a constant stretch has a deviation of exactly zero, as NAB's has).
    c = x - x[0]
    k = np.arange(1, n + 1, dtype=float)
    mean = np.cumsum(c) / k
    var = np.maximum(np.cumsum(c * c) / k - mean * mean, 0.0)
    var[np.cumsum(c != 0) == 0] = 0.0
    mean_at = np.zeros(n)
    sd_at = np.ones(n)
    fill = min(n, window + 1)
    mean_at[1:fill] = mean[: fill - 1] + x[0]
    sd_at[1:fill] = np.sqrt(var[: fill - 1])
    # Then the window moves `step` points at a time, once `step` new points have arrived.
    for hi in range(window, n, step):
        part = x[hi - window : hi]
        mean_at[max(hi, window + 1) : hi + step] = float(np.mean(part))
        sd_at[max(hi, window + 1) : hi + step] = float(np.std(part))
    sd_at[sd_at == 0.0] = 1e-6
    z = np.abs(x - mean_at) / sd_at
    out[1:] = 1.0 - 0.5 * np.array([math.erfc(v / math.sqrt(2.0)) for v in z[1:]])
    return out
