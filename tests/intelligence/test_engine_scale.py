"""The engine at scale: each SQL detector run once for a chunk of organizations finds for each what it finds
for that organization alone, a detector failing for one organization costs the others nothing, and
`tokentra bench engine` runs end to end on a few organizations and cleans up after itself."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg

from tokentra_cli import admin
from tokentra_dev.bench_engine import run as bench_engine
from tokentra_dev.bench_recommendations import clean_rows, load_rows, plant
from tokentra_worker import recommendations


def _comparable(recs) -> list[str]:
    """Findings as sorted JSON, sample request ids left out (an unordered array_agg picks them)."""
    out = []
    for r in recs:
        row = dict(r)
        row["evidence"] = {k: v for k, v in (row["evidence"] or {}).items() if k != "sample_request_ids"}
        out.append(json.dumps(row, sort_keys=True, default=str))
    return sorted(out)


def test_a_chunk_finds_what_each_organization_finds_alone(db):
    """Every registered detector, run once for a chunk, returns for each organization exactly what it
    returns for that organization alone (no organization's rows leak into another's findings), and
    nothing for an organization without usage."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(4)
    orgs = []
    for category in ("request_deduplication", "context_window_efficiency", "task_aware_routing", "error_reduction"):
        org = admin.create_org(db, f"batch-{category}-{uuid.uuid4().hex[:6]}")
        load_rows(db, str(org.id), plant(category, 300, now, rng) + clean_rows(50, now, rng))
        orgs.append(str(org.id))
    empty = str(admin.create_org(db, f"batch-empty-{uuid.uuid4().hex[:6]}").id)
    detectors = db.execute("select category, function_name from private.detectors order by 1").fetchall()
    assert len(detectors) == 19
    fired = set()
    for d in detectors:
        query = f"select * from {d['function_name']}(%s::uuid[], %s)"
        chunk = db.execute(query, ([*orgs, empty], now)).fetchall()
        assert all(r["category"] == d["category"] for r in chunk)
        for org in [*orgs, empty]:
            alone = db.execute(query, ([org], now)).fetchall()
            assert _comparable(r for r in chunk if str(r["org_id"]) == org) == _comparable(alone), (d, org)
        fired |= {r["category"] for r in chunk}
        assert not [r for r in chunk if str(r["org_id"]) == empty]
    assert {"context_window_efficiency", "task_aware_routing"} <= fired  # the chunk holds real findings


_BROKEN = """
create function private.detect_broken_for_one(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate language sql stable set search_path = '' as $$
  select o, 'broken_for_one', 'feature', 'f', 'k', 'title f', 'description', 10::numeric,
         -- a DataError raised by the database, for one organization of the chunk only
         (1 / case when o = %(bad)s::uuid then 0 else 1 end)::numeric, 'method', 0.5, 'low', 'low',
         '["step"]'::jsonb, '{"sample_request_ids": []}'::jsonb, null::jsonb
    from unnest(p_orgs) o
$$;
insert into private.detectors (category, function_name, description)
values ('broken_for_one', 'private.detect_broken_for_one', 'fails for one organization');
"""


def test_a_failing_sql_detector_costs_other_organizations_nothing(db):
    """One statement for the chunk fails; rerun per organization, only the bad one loses that detector's
    findings, and every organization keeps the other detectors'."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(6)
    good, bad = (str(admin.create_org(db, f"sqlfail-{i}-{uuid.uuid4().hex[:6]}").id) for i in range(2))
    for org in (good, bad):
        load_rows(db, org, plant("task_aware_routing", 300, now, rng))
    db.execute(_BROKEN.replace("%(bad)s", f"'{bad}'"))
    found = recommendations.detect_chunk(db, [good, bad], now)
    assert sorted(r.category for r in found[good].recs) == ["broken_for_one", "task_aware_routing"]
    assert [r.category for r in found[bad].recs] == ["task_aware_routing"]
    assert found[good].days >= 29
    assert db.execute("select 1 as ok").fetchone()["ok"] == 1  # the transaction is still usable
    # A disabled detector is skipped, and its category does not fall back to Python.
    db.execute("update private.detectors set enabled = false where category = 'broken_for_one'")
    assert [r.category for r in recommendations.detect_chunk(db, [good], now)[good].recs] == ["task_aware_routing"]


def test_bench_engine_times_the_job_and_drops_its_database(dsn: str):
    name = f"tokentra_bench_engine_{uuid.uuid4().hex[:8]}"
    out = bench_engine(orgs=4, rows_per_org=120, sample=2, as_json=True, database=name)
    assert out["organizations"] == 4 and out["usage_rows"] >= 4 * 20
    assert out["hourly_rollup_rows"] > 0 and out["daily_rollup_rows"] > 0
    assert out["first_run_s"] > 0 and out["steady_run_s"] > 0
    assert out["steady_run"] == out["first_run"]  # a second run updates, it does not duplicate
    assert set(out["ms_per_org_by_part"]) >= {"whole job", "detector task_aware_routing (SQL)",
                                               "write, expire, realised savings"}
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from pg_database where datname = %s", (name,)).fetchone()[0] == 0
