"""The anomaly detector's rules on generated series: randomised shapes, sizes and noise."""

from __future__ import annotations

import numpy as np
import pytest

from tokentra_worker._anomaly_model import detect
from tokentra_worker.anomalies import GRAINS, detect_series

WARMUP = 72  # the job raises nothing on an hourly series younger than three days


def hourly_spend(rng: np.random.Generator, days: int) -> np.ndarray:
    n = days * 24
    h = np.arange(n)
    peak = rng.integers(0, 24)
    daily = 1 + rng.uniform(0.2, 0.7) * np.sin(2 * np.pi * ((h - peak) % 24) / 24)
    weekly = np.where((h // 24) % 7 >= 5, rng.uniform(0.5, 1.0), 1.0)
    return rng.uniform(0.5, 500) * daily * weekly * rng.lognormal(0, rng.uniform(0.04, 0.15), n)


def test_each_of_two_spikes_is_one_incident_and_little_else_is():
    found_all, false_alarms = 0, 0
    # The detector is causal: it knows the weekly cycle once three weeks are behind a point (before
    # that, the first Mondays are news to it), so the spikes come after three weeks of history.
    for seed in range(100, 130):
        rng = np.random.default_rng(seed)
        x = hourly_spend(rng, 35)
        first = int(rng.integers(22 * 24, 27 * 24))
        second = int(rng.integers(first + 3 * 24, 33 * 24))
        for at in (first, second):
            # The second spike may be the smaller: the first must not have raised the bar for it.
            x[at : at + int(rng.integers(1, 4))] *= rng.uniform(3, 8)
        found = detect(x, 24, 168, direction="up", warmup=WARMUP)
        starts = [i.start for i in found]
        found_all += first in starts and second in starts
        false_alarms += len({s for s in starts if s >= 21 * 24} - {first, second})
        assert all(i.kind == "spike" and i.score > 6 for i in found if i.start in (first, second))
    # Thirty four-week series: every spike found; a rare +40% hour on a four-sample weekly profile may
    # still pass for news once.
    assert found_all == 30 and false_alarms <= 1


@pytest.mark.parametrize("seed", [201, 202, 203])
def test_a_spike_no_larger_than_the_history_has_shown_raises_nothing(seed):
    rng = np.random.default_rng(seed)
    x = hourly_spend(rng, 28)
    size = rng.uniform(3, 5)
    early = int(rng.integers(24, 60))  # within the warm-up: part of what normal looks like
    x[early] *= size
    later = int(rng.integers(22 * 24, 27 * 24))  # after three weeks, when the weekly cycle is known too
    again = x.copy()
    again[later] *= size * 0.8
    # Before three weeks a first Monday may still read as news (the weekly cycle is not known yet).
    weeks_in = 21 * 24
    assert [i for i in detect(again, 24, 168, direction="up", warmup=WARMUP) if i.start >= weeks_in] == []
    bigger = x.copy()
    bigger[later] *= size * 2
    found = detect(bigger, 24, 168, direction="up", warmup=WARMUP)
    assert [i.start for i in found if i.start >= weeks_in] == [later]


@pytest.mark.parametrize("seed", [301, 302, 303])
def test_a_sustained_shift_hidden_in_point_noise_is_found_at_its_start(seed):
    rng = np.random.default_rng(seed)
    per_day = 288  # five-minute points
    n = 12 * per_day
    noise = rng.uniform(0.2, 0.3)
    x = np.exp(rng.normal(0, noise, n)) * rng.uniform(1, 100)
    at = int(rng.integers(5 * per_day, 10 * per_day))
    x[at:] *= np.exp(3.5 * noise)  # each point within 4 sigmas: no single point gives it away
    found = detect(x, per_day, None, direction="up", warmup=2 * per_day)
    assert len(found) == 1 and at <= found[0].start <= at + per_day // 12
    assert found[0].kind == "level_shift"


def test_a_flat_series_needs_a_relative_move():
    x = np.full(24 * 14, 10.0)
    assert detect(x, 24, None, direction="up") == []
    small = x.copy()
    small[200] = 10.05  # half a percent over a perfectly flat past: not worth an alert
    assert detect(small, 24, None, direction="up", log=False) == []
    big = x.copy()
    big[200] = 15.0
    assert [i.start for i in detect(big, 24, None, direction="up", log=False)] == [200]


def _with_incidents(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """x with a few spikes and a level shift at random places, so there are verdicts to keep."""
    x = x.copy()
    n = len(x)
    for at in rng.choice(np.arange(n // 4, n - 5), size=int(rng.integers(2, 5)), replace=False):
        x[at : at + int(rng.integers(1, 4))] *= rng.uniform(3, 8)
    x[int(rng.integers(n // 2, n - 10)) :] *= rng.uniform(1.8, 3)
    return x


@pytest.mark.parametrize("seed", [401, 402, 403])
def test_a_points_verdict_never_depends_on_the_points_after_it(seed):
    rng = np.random.default_rng(seed)
    cases = [
        (hourly_spend(rng, int(rng.integers(24, 35))), 24, 168, int(rng.integers(24, 169))),
        (hourly_spend(rng, int(rng.integers(8, 14))), 24, None, 24),
        # five-minute points, as on the benchmark: a day of 288 and the default window
        (np.exp(rng.normal(0, 0.2, 288 * 10)) * (2 + np.sin(np.arange(288 * 10) * 2 * np.pi / 288)), 288, None, None),
    ]
    checked = 0
    for x, period, weekly, window in cases:
        x = _with_incidents(rng, x)
        n = len(x)
        for direction, log in (("up", True), ("both", True), ("both", False)):
            kwargs = {"direction": direction, "log": log, "window": window}
            before = detect(x, period, weekly, **kwargs)
            for t in sorted(rng.choice(np.arange(n // 3, n - 2), size=3, replace=False)):
                # Rewrite the future: noise, a level of its own, a spike or a collapse.
                y = x.copy()
                y[t + 1 :] = rng.uniform(0, 3 * x.max(), n - t - 1) * rng.choice([0.0, 0.5, 1.0, 10.0])
                after = detect(y, period, weekly, **kwargs)
                assert [i.start for i in before if i.start <= t] == [i.start for i in after if i.start <= t]
                checked += sum(1 for i in before if i.start <= t)
    assert checked > 0  # the comparison covered real alarms, not only empty lists


def young_hourly_spend(rng: np.random.Generator, hours: int) -> np.ndarray:
    """Hourly spend of a series seen from its first call: a random day shape, a week of working days
    (each its own level) and a quieter weekend of random depth, starting on any weekday and hour."""
    start = int(rng.integers(0, 168))  # the hour of the week of the first call
    h = np.arange(start, start + hours)
    peak = rng.integers(0, 24)
    daily = 1 + rng.uniform(0.2, 0.7) * np.sin(2 * np.pi * ((h - peak) % 24) / 24)
    by_day = rng.uniform(0.85, 1.15, 7)
    weekend = int(rng.integers(0, 7))
    by_day[[weekend, (weekend + 1) % 7]] *= rng.uniform(0.3, 0.75)
    noise = rng.lognormal(0, rng.uniform(0.04, 0.15), hours)
    return rng.uniform(0.5, 500) * daily * by_day[(h // 24) % 7] * noise


def test_a_young_series_raises_nothing_on_the_weekdays_it_has_not_seen():
    # Under two weeks of history the weekly profile is not known; a working day after the first quiet
    # weekend must not read as news (it did: about two in five young series alarmed on their Mondays).
    alarms = []
    for seed in range(600, 640):
        rng = np.random.default_rng(seed)
        x = young_hourly_spend(rng, int(rng.integers(GRAINS["hour"][4], 22 * 24)))
        for metric in ("cost", "requests"):
            alarms += [(seed, metric, i.start) for i in detect_series(x, "hour", metric)]
    # A second Monday may still outdo the one Monday seen before by more than a point's margin, rarely.
    assert len({seed for seed, _, _ in alarms}) <= 1, alarms


def test_a_spike_in_a_young_series_is_still_found():
    found, other = 0, []
    for seed in range(700, 730):
        rng = np.random.default_rng(seed)
        hours = int(rng.integers(GRAINS["hour"][4] + 24, 22 * 24))
        x = young_hourly_spend(rng, hours)
        # anywhere a point may be flagged: from a week and a day of history on
        at = int(rng.integers(GRAINS["hour"][4], hours - 3))
        x[at : at + int(rng.integers(1, 4))] *= rng.uniform(4, 8)
        starts = [i.start for i in detect_series(x, "hour", "cost")]
        found += at in starts
        other += [(seed, s) for s in starts if s != at]
    # Until the weekly profile is known, a spike must outdo the first Monday's jump, which after a deep
    # weekend is threefold: a spike of four to eight times is found in nine young series of ten.
    assert found >= 27 and len({seed for seed, _ in other}) <= 1, (found, other)
