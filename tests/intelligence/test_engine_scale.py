"""The engine at scale: aggregates read for a chunk of organizations at once equal those read one
organization at a time, a failing detector costs the others nothing, and `tokentra bench engine` runs
end to end on a few organizations and cleans up after itself."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from tokentra_cli import admin
from tokentra_dev.bench_engine import run as bench_engine
from tokentra_dev.bench_recommendations import clean_rows, load_rows, plant
from tokentra_worker import recommendations
from tokentra_worker.recommendations._data import OrgData, load, load_many

FIELDS = ("days", "scopes", "tasks", "repeats", "users", "prefixes", "shapes", "quality", "formats",
          "shared_prefixes")


def _rounded(value):
    """Floats to 9 significant digits: a float sum may differ in its last bit with the order of its terms."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _comparable(data: OrgData) -> dict:
    """Every aggregate, rows sorted; sample request ids left out (an unordered array_agg picks them)."""
    out = {}
    for name in FIELDS:
        value = getattr(data, name)
        if isinstance(value, list):
            value = sorted(json.dumps(_rounded({k: v for k, v in r.items() if k != "samples"}), sort_keys=True,
                                      default=str) for r in value)
        elif isinstance(value, dict):
            value = json.dumps(_rounded({"|".join(k): v for k, v in value.items()}), sort_keys=True, default=str)
        out[name] = _rounded(value)
    return out


def test_batched_aggregates_equal_one_organization_at_a_time(db):
    now = datetime.now(UTC)
    rng = np.random.default_rng(4)
    orgs = []
    for category in ("request_deduplication", "context_window_efficiency", "task_aware_routing"):
        org = admin.create_org(db, f"batch-{category}-{uuid.uuid4().hex[:6]}")
        load_rows(db, str(org.id), plant(category, 300, now, rng) + clean_rows(50, now, rng))
        orgs.append(str(org.id))
    # Signals and feedback too: one organization's SDK measurements and a quality score.
    db.execute("update public.usage_records set metadata = %s where org_id = %s",
               (Jsonb({"tokentra": {"output_overhead": 0.4, "response_format": "json"}}), orgs[0]))
    db.execute("insert into private.usage_feedback (org_id, request_id, score) select org_id, request_id, 0.9 "
               "from public.usage_records where org_id = %s limit 20 on conflict do nothing", (orgs[1],))
    empty = str(admin.create_org(db, f"batch-empty-{uuid.uuid4().hex[:6]}").id)

    batch = load_many(db, [*orgs, empty], now)
    assert set(batch) == {*orgs, empty}
    for org in orgs:
        assert batch[org].scopes and batch[org].org == org
        assert _comparable(batch[org]) == _comparable(load(db, org, now))
    # The signals are read too, and stay with their organization.
    assert batch[orgs[0]].formats and batch[orgs[1]].quality
    assert {f["response_format"] for f in batch[orgs[0]].formats} == {"json"}
    assert batch[empty].scopes == {} and batch[empty].days == 1.0


def test_a_failing_detector_costs_the_others_nothing(db, monkeypatch):
    now = datetime.now(UTC)
    org = admin.create_org(db, f"broken-{uuid.uuid4().hex[:6]}")
    load_rows(db, str(org.id), plant("task_aware_routing", 300, now, np.random.default_rng(2)))
    data = load(db, str(org.id), now)

    def broken(conn, _data):
        conn.execute("select 1 / 0")  # a DataError raised by the database

    monkeypatch.setitem(recommendations.DETECTORS, "broken", broken)
    found = recommendations.detect(db, data)
    assert [r.category for r in found] == ["task_aware_routing"]
    assert db.execute("select 1 as ok").fetchone()["ok"] == 1  # the transaction is still usable


def test_bench_engine_times_the_job_and_drops_its_database(dsn: str):
    name = f"tokentra_bench_engine_{uuid.uuid4().hex[:8]}"
    out = bench_engine(orgs=4, rows_per_org=120, sample=2, as_json=True, database=name)
    assert out["organizations"] == 4 and out["usage_rows"] >= 4 * 20
    assert out["hourly_rollup_rows"] > 0 and out["daily_rollup_rows"] > 0
    assert out["first_run_s"] > 0 and out["steady_run_s"] > 0
    assert out["steady_run"] == out["first_run"]  # a second run updates, it does not duplicate
    assert set(out["ms_per_org_by_part"]) >= {"whole job", "load aggregates (batched)"}
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from pg_database where datname = %s", (name,)).fetchone()[0] == 0
