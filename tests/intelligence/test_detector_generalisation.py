"""The SQL detectors on randomised traffic (tokentra_dev.detector_traffic): each planted pattern is found on
its own scope, whatever shape, size, hours and noise the seed gave it, and each look-alike that is not the
pattern (a workday, streamed evenings, a one-off backfill, duplicates after a success, a cheaper model that
scores worse...) raises nothing of these categories. Seeds are drawn from the development range; the held-out
range is for `tokentra bench generalise`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from tokentra_cli import admin
from tokentra_dev.bench_generalise import HELD_OUT, detect_all
from tokentra_dev.detector_traffic import CATEGORIES, KINDS, load_scenario, scenario

DEVELOPMENT_SEEDS = (7, 42, 101)
assert max(DEVELOPMENT_SEEDS) < HELD_OUT


@pytest.mark.parametrize("category", CATEGORIES)
def test_patterns_found_and_look_alikes_silent(db, category: str):
    # Fixed development seeds: a random one each run made the suite flaky on the generator's known near-misses
    # (a "sparse" prefix look-alike whose sessions happen to overlap); the held-out seeds live in the bench.
    seed = DEVELOPMENT_SEEDS[CATEGORIES.index(category) % len(DEVELOPMENT_SEEDS)]
    rng, now = np.random.default_rng(seed), datetime.now(UTC)
    planted: dict[str, tuple[str, set[tuple[str, str]]]] = {}
    for kind in (k for k in KINDS if k.startswith(category + "+") or k.startswith(category + "-")):
        s = scenario(kind, rng, now)
        org = str(admin.create_org(db, f"gen-{uuid.uuid4().hex[:8]}").id)
        load_scenario(db, org, s)
        planted[org] = (kind, s.expected)
    found: dict[str, set[tuple[str, str]]] = {org: set() for org in planted}
    for org, c, scope in detect_all(db, list(planted), now):
        found[org].add((c, scope))
    assert any(kind.startswith(category + "+") for kind, _ in planted.values())
    for org, (kind, expected) in planted.items():
        assert found[org] == expected, f"seed {seed}, {kind}: found {found[org]}, planted {expected}"
