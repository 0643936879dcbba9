"""NAB's scoring rules on files small enough to score by hand, and NAB's windowed-Gaussian baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokentra_dev import nab_scoring as ns

STD = ns.PROFILES["standard"]
N = 100  # points per hand-made file: the first 15 are probationary
WINDOW = (40, 49)  # ten points


def sig(position: float) -> float:
    """NAB's scaled sigmoid, written out: 2 / (1 + e^(5 * position)) - 1."""
    return 2 / (1 + math.exp(5 * position)) - 1


def raw(detections: list[int], windows=(WINDOW,), n: int = N) -> float:
    marks = np.zeros(n)
    marks[detections] = 1.0
    return ns.score_at([ns.sweep_file(marks, list(windows), STD)], 1.0, STD).raw


def test_standard_profile_weights():
    assert (STD.tp, STD.fp, STD.fn) == (1.0, 0.11, 1.0)
    assert ns.PROFILES["reward_low_FP_rate"].fp == 0.22 and ns.PROFILES["reward_low_FN_rate"].fn == 2.0


def test_probation_is_fifteen_percent_capped_at_750_points():
    assert [ns.probation_length(n) for n in (100, 4033, 5000, 22695)] == [15, 604, 750, 750]


def test_detection_at_the_window_start_scores_the_full_reward():
    assert raw([40]) == pytest.approx(1.0)
    assert ns.normalised(raw([40]), 1, STD) == pytest.approx(100.0)


def test_detection_at_the_window_end_scores_almost_nothing_but_beats_a_miss():
    # The last point sits a tenth of a window before the sigmoid's zero; rewards are scaled so that
    # the first point of a window earns exactly A_TP.
    expected = sig(-0.1) / sig(-1.0)
    assert raw([49]) == pytest.approx(expected)
    assert 0.2 < expected < 0.3
    assert ns.normalised(raw([49]), 1, STD) == pytest.approx(100 * (expected + 1) / 2)


def test_only_the_first_detection_in_a_window_counts():
    assert raw([45, 40, 47]) == pytest.approx(1.0)
    assert raw([45, 48]) == pytest.approx(sig(-0.5) / sig(-1.0))


def test_missed_window_and_false_positives():
    assert raw([]) == pytest.approx(-1.0)
    assert ns.normalised(raw([]), 1, STD) == pytest.approx(0.0)
    # Before any window, a false positive costs the full A_FP.
    assert raw([20]) == pytest.approx(-1.0 - 0.11)
    assert ns.normalised(raw([20]), 1, STD) == pytest.approx(-5.5)
    # Just past a window it costs less, by the sigmoid of its distance in window lengths (width - 1).
    assert raw([40, 50]) == pytest.approx(1.0 + 0.11 * sig(1 / 9))
    # Three window lengths past it or more, the full A_FP.
    assert raw([40, 80]) == pytest.approx(1.0 - 0.11)
    # A file without windows: each false positive costs A_FP.
    assert raw([20, 60], windows=()) == pytest.approx(-0.22)


def test_probationary_period_is_not_scored():
    assert raw([10]) == pytest.approx(-1.0)  # the detection is ignored, the window missed
    assert raw([10], windows=((5, 12),)) == 0.0  # a window wholly in probation is not scored at all
    assert ns.sweep_file(np.zeros(N), [(5, 12)], STD).windows == 0
    assert ns.sweep_file(np.zeros(N), [(10, 20)], STD).windows == 1  # straddling: scored


def test_normalisation_between_null_and_perfect():
    # Two files, three windows: null is -3, perfect +3.
    assert ns.normalised(-3.0, 3, STD) == pytest.approx(0.0)
    assert ns.normalised(3.0, 3, STD) == pytest.approx(100.0)
    assert ns.normalised(0.0, 3, STD) == pytest.approx(50.0)
    assert ns.normalised(-0.5, 0, STD) is None


def test_optimiser_picks_the_threshold_with_the_best_corpus_score():
    a = np.zeros(N)
    a[20], a[45] = 0.95, 0.9  # a false positive scoring above the true detection
    b = np.zeros(N)
    b[30] = 0.92  # a false positive in a file without windows
    files = [ns.sweep_file(a, [WINDOW], STD), ns.sweep_file(b, [], STD)]
    best = ns.best_threshold(files, STD)
    # At 0.9 everything fires: two full false positives and a detection halfway into the window.
    assert best.threshold == 0.9 and (best.tp, best.fn, best.fp) == (1, 0, 2)
    assert best.raw == pytest.approx(sig(-0.5) / sig(-1.0) - 0.22)
    assert best.raw == pytest.approx(ns.score_at(files, 0.9, STD).raw)
    # A late detection (0.25) below twelve full false positives (12 x 0.11): nothing firing wins.
    c = np.zeros(N)
    c[49] = 0.5
    c[16:28] = 0.6
    worse = ns.best_threshold([ns.sweep_file(c, [WINDOW], STD)], STD)
    assert worse.threshold == 1.1 and worse.raw == pytest.approx(-1.0)


def _gaussian_by_the_book(values, window: int, step: int) -> list[float]:
    """The windowed-Gaussian detector point by point: a window that fills, then moves `step` at a time."""
    data: list[float] = []
    buffer: list[float] = []
    mean, std = 0.0, 1.0
    out = []
    for v in values:
        score = 0.0
        if data:
            z = abs(v - mean) / std
            score = 1 - 0.5 * math.erfc(z / math.sqrt(2))
        if len(data) < window:
            data.append(v)
        else:
            buffer.append(v)
            if len(buffer) < step:
                out.append(score)
                continue
            data = data[step:] + buffer
            buffer = []
        mean, std = float(np.mean(data)), float(np.std(data)) or 1e-6
        out.append(score)
    return out


@pytest.mark.parametrize("seed", [3, 17, 29])
def test_windowed_gaussian_matches_its_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 700))
    x = rng.normal(rng.uniform(-5, 50), rng.uniform(0.5, 5), n)
    x[int(rng.integers(150, n - 10))] += rng.uniform(10, 40)
    window, step = int(rng.integers(50, 200)), int(rng.integers(5, 30))
    got = ns.windowed_gaussian(x, window, step)
    np.testing.assert_allclose(got, _gaussian_by_the_book(x, window, step), atol=1e-12)
    assert got[0] == 0.0 and got.max() > 0.999


def test_windowed_gaussian_on_a_flat_line_then_a_step():
    x = np.full(300, 4.0)
    x[250:] = 5.0
    got = ns.windowed_gaussian(x, 6400, 100)
    assert np.all(got[1:250] == 0.5)  # at the mean: the tail on either side is one half
    assert got[250] == 1.0  # a step over a zero-deviation window: certain
