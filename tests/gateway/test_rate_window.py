"""The gateway's per-minute limits count over the sliding last 60 seconds (as the database's rate limit
does): checked at chosen instants, since a test at the real clock cannot choose where a minute ends."""

from __future__ import annotations

import random

import pytest

from tokentra_functions.gateway.admission import sliding_wait


def _admits(current: int, previous: int, elapsed: float, limit: int, more: int) -> bool:
    return sliding_wait(current, previous, elapsed, limit, more) == 0


def test_a_burst_at_a_minutes_end_still_counts_after_it() -> None:
    # three requests at 59.9 s of one minute, a limit of three: the fourth, just after the minute turned,
    # is refused (a clock minute would have let three more through at once)
    assert _admits(3, 0, 59.9, 3, 1)
    assert not _admits(1, 3, 0.1, 3, 1)
    # two minutes back no longer counts: nothing of it is passed in
    assert _admits(1, 0, 0.1, 3, 1)
    # tokens: refused once the tokens counted reach the limit, the previous minute weighted in
    assert not _admits(60, 80, 30.0, 100, 0)
    assert _admits(50, 80, 30.0, 100, 0)


def _retry_fits(current: int, previous: int, elapsed: float, limit: int, more: int, after: float) -> bool:
    """Whether a retry `after` seconds later, with no other traffic, would be admitted."""
    at = elapsed + after
    if at < 60:  # the same minute: a retry adds `more` to it
        return _admits(current + more, previous, at, limit, more)
    return _admits(more, current, at - 60, limit, more)  # the next one: this minute is the previous


@pytest.mark.parametrize("seed", [11, 2024, random.randrange(10**9)])
def test_the_wait_is_the_first_whole_second_a_retry_fits(seed: int) -> None:
    """Whatever the counts and the instant, a refusal's wait is when a retry (with no other traffic) would
    be admitted, and a second earlier it would not."""
    rng = random.Random(seed)
    for _ in range(5000):
        limit = rng.randint(1, 200)
        more = rng.choice([0, 1])
        current = rng.randint(more, 3 * limit)
        previous = rng.randint(0, 3 * limit)
        elapsed = rng.uniform(0, 59.999)
        wait = sliding_wait(current, previous, elapsed, limit, more)
        if wait == 0:
            continue
        assert 1 <= wait <= 120, (seed, limit, current, previous, elapsed, wait)

        case = (current, previous, elapsed, limit, more)
        assert _retry_fits(*case, wait + 1e-6), (seed, case, wait)
        if wait > 1:
            assert not _retry_fits(*case, wait - 1), (seed, case, wait)
