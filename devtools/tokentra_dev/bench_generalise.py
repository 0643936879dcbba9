"""`tokentra bench generalise`: the SQL detectors of spend that buys nothing, schedules and customers'
signals on randomised traffic from seeds held out from development (tokentra_dev.detector_traffic):
one organization per scenario, every detector run once over all of them as the worker runs it, and per
category precision (findings that are planted patterns) and recall (planted patterns found), with what
each scenario kind raised.

Development used seeds below HELD_OUT; the bench's default seeds start there.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np

from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_dev.detector_traffic import CATEGORIES, KINDS, load_scenario, scenario

__all__ = ["HELD_OUT", "detect_all", "run"]

HELD_OUT = 10_000  # seeds from here on were never used while writing the detectors


def detect_all(conn, orgs: list[str], now: datetime,
               seconds: dict[str, float] | None = None) -> list[tuple[str, str, str]]:
    """(organization, category, scope value) of every finding of the categories, one statement each; the
    time each statement took goes into `seconds` when given."""
    found = []
    for category in CATEGORIES:
        fn = conn.execute("select function_name from private.detectors where category = %s", (category,)).fetchone()
        t0 = time.perf_counter()
        rows = conn.execute(f"select org_id::text, scope_value from {fn['function_name']}(%s::uuid[], %s)",  # noqa: S608 - a registered private.detect_* name
                            (orgs, now)).fetchall()
        if seconds is not None:
            seconds[category] = round(time.perf_counter() - t0, 2)
        found += [(r["org_id"], category, r["scope_value"]) for r in rows]
    return found


def run(seeds: int = 4, first_seed: int = HELD_OUT, dsn: str | None = None, as_json: bool = False) -> dict:
    now = datetime.now(UTC)
    expected: set[tuple[str, str, str]] = set()
    kind_of: dict[str, str] = {}
    rows = 0
    with connect(dsn) as conn:
        try:
            t0 = time.perf_counter()
            for seed in range(first_seed, first_seed + seeds):
                rng = np.random.default_rng(seed)
                for kind in KINDS:
                    s = scenario(kind, rng, now)
                    org = str(admin.create_org(conn, f"bench-gen-{uuid.uuid4().hex[:8]}").id)
                    load_scenario(conn, org, s)
                    kind_of[org] = kind
                    expected |= {(org, c, scope) for c, scope in s.expected}
                    rows += len(s.rows)
            # As the periodic jobs leave a database: rollups materialized up to now, statistics fresh.
            conn.execute("select private.refresh_usage_rollups(%s, null)", (now,))
            conn.execute("analyze public.usage_records, private.usage_feedback")
            loaded = time.perf_counter() - t0
            t0 = time.perf_counter()
            seconds: dict[str, float] = {}
            found = set(detect_all(conn, list(kind_of), now, seconds))
            detected = time.perf_counter() - t0
        finally:
            conn.rollback()  # nothing of the bench stays behind
    per: dict[str, dict[str, int]] = {c: {"tp": 0, "fp": 0, "fn": 0} for c in CATEGORIES}
    for org, c, scope in found:
        per[c]["tp" if (org, c, scope) in expected else "fp"] += 1
    for _, c, _ in expected - found:
        per[c]["fn"] += 1
    raised: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for org, c, _ in found:
        raised[kind_of[org]][c] += 1
    out = {
        "seeds": [first_seed, first_seed + seeds - 1], "organizations": len(kind_of), "rows": rows,
        "load_seconds": round(loaded, 1), "detect_seconds": round(detected, 2),
        "categories": {c: {**m, "seconds": seconds[c],
                           "precision": round(m["tp"] / (m["tp"] + m["fp"]), 3) if m["tp"] + m["fp"] else None,
                           "recall": round(m["tp"] / (m["tp"] + m["fn"]), 3) if m["tp"] + m["fn"] else None}
                       for c, m in per.items()},
        "kinds": {k: dict(raised.get(k, {})) for k in KINDS},
    }
    if as_json:
        print(json.dumps(out))
        return out
    held = "held-out " if first_seed >= HELD_OUT else "development "
    print(f"{held}seeds {first_seed}..{first_seed + seeds - 1}: {len(kind_of)} organizations, {rows:,} calls "
          f"(loaded in {loaded:.1f} s), 9 detectors over all of them in {detected:.2f} s")
    print(f"{'category':30s} {'tp':>4s} {'fp':>4s} {'fn':>4s} {'precision':>9s} {'recall':>7s} {'seconds':>8s}")
    for c, m in out["categories"].items():
        p = f"{m['precision']:.3f}" if m["precision"] is not None else "-"
        r = f"{m['recall']:.3f}" if m["recall"] is not None else "-"
        print(f"{c:30s} {m['tp']:4d} {m['fp']:4d} {m['fn']:4d} {p:>9s} {r:>7s} {m['seconds']:8.2f}")
    print("what each scenario kind raised (of", seeds, "organizations each):")
    for k, cats in out["kinds"].items():
        print(f"  {k:45s} {', '.join(f'{c} {n}' for c, n in sorted(cats.items())) or '-'}")
    return out
