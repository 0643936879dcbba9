"""The overhead measurement `tokentra bench sdk` calls."""

from __future__ import annotations

import pytest

import tokentra
from tokentra import _state
from tokentra_dev.bench_sdk import measure_overhead


@pytest.mark.parametrize("stream", [False, True])
def test_measure_overhead_reports_percentiles_without_touching_the_app_sender(stream: bool) -> None:
    _state.reset()
    before = tokentra.stats()
    result = measure_overhead(200, stream=stream, warmup=20)
    assert result["n"] == 200 and result["stream"] is stream
    assert 0 < result["p50_us"] <= result["p99_us"] <= result["max_us"]
    assert result["worker_us_per_event"] > 0
    assert tokentra.stats() == before  # the bench used its own sender
    _state.reset()
