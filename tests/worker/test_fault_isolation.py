"""Fault isolation in per-organization jobs: whatever one organization or one detector raises is rolled back,
counted and logged with the organization, the detector and the message, and the job goes on."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_dev.bench_recommendations import clean_rows, load_rows, plant
from tokentra_worker import recommendations
from tokentra_worker._per_org import for_each_active_org


def _org_with_waste(dsn: str, rng: np.random.Generator, now: datetime) -> str:
    with connect(dsn) as conn:
        org = str(admin.create_org(conn, f"isolation-{uuid.uuid4().hex[:8]}").id)
        load_rows(conn, org, plant("request_deduplication", 600, now, rng) + clean_rows(100, now, rng))
        conn.commit()
    return org


def _categories(dsn: str, org: str) -> set[str]:
    with connect(dsn) as conn:
        return {r["category"] for r in conn.execute(
            "select category from public.recommendations where org_id = %s", (org,))}


_EXPLODING = """
create function private.detect_exploding(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate language plpgsql stable set search_path = '' as $$
begin
  if %(bad)s::uuid = any (p_orgs) then
    raise exception 'planted failure';
  end if;
end
$$
"""


def test_a_raising_detector_costs_only_its_own_findings(dsn, caplog):
    """A registered SQL detector that raises for one organization of the chunk: the chunk's statement is
    rerun per organization, so only that organization loses only that detector's findings."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(int(uuid.uuid4().int % 2**32))
    bad, good = _org_with_waste(dsn, rng, now), _org_with_waste(dsn, rng, now)
    with connect(dsn) as conn:
        conn.execute(_EXPLODING.replace("%(bad)s", f"'{uuid.UUID(bad)}'"))
        conn.execute("insert into private.detectors (category, function_name, description) "
                     "values ('exploding', 'private.detect_exploding', 'raises for one organization')")
        conn.commit()
    try:
        with caplog.at_level(logging.WARNING, logger="tokentra.worker"):
            recommendations.run_recommendations(dsn, now, orgs=[bad, good])
    finally:
        with connect(dsn) as conn:
            conn.execute("delete from private.detectors where category = 'exploding'")
            conn.execute("drop function private.detect_exploding(uuid[], timestamptz)")
            conn.commit()
    # Both organizations still get the finding of their planted waste.
    assert "request_deduplication" in _categories(dsn, bad)
    assert "request_deduplication" in _categories(dsn, good)
    lines = [r.getMessage() for r in caplog.records]
    assert any(bad in line and "exploding" in line and "planted failure" in line for line in lines), lines
    assert not any(good in line for line in lines)


@pytest.mark.parametrize("error", [KeyError("missing"), ValueError("bad value"), ZeroDivisionError("div")])
def test_any_exception_in_one_organization_is_counted_and_the_others_run(dsn, caplog, error):
    orgs = [str(uuid.uuid4()) for _ in range(4)]
    failing = orgs[1]
    ran: list[str] = []

    def run_org(conn, org: str, now: datetime) -> dict[str, int]:
        conn.execute("select 1")  # leaves a transaction open, as real work does, for the rollback to end
        if org == failing:
            raise error
        ran.append(org)
        return {"done": 1}

    with caplog.at_level(logging.WARNING, logger="tokentra.worker"):
        n, totals = for_each_active_org(dsn, datetime.now(UTC), 30, run_org, "test job", orgs)
    assert n == 4 and ran == [o for o in orgs if o != failing]
    assert totals == {"done": 3, "failed": 1}
    [line] = [r.getMessage() for r in caplog.records if failing in r.getMessage()]
    assert "test job" in line and type(error).__name__ in line and str(error.args[0]) in line


_UNWRITABLE = """
create function private.detect_unwritable(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate language sql stable set search_path = '' as $$
  -- a finding the recommendations table refuses (risk is low, medium or high), for one organization only
  select o, 'unwritable', 'feature', 'f', 'k', 'title', 'description', 10::numeric, 1::numeric, 'method', 0.5,
         case when o = %(bad)s::uuid then 'extreme' else 'low' end, 'low', '["step"]'::jsonb, '{}'::jsonb,
         null::jsonb
    from unnest(p_orgs) o
$$
"""


def test_a_chunk_that_cannot_be_written_is_written_one_organization_at_a_time(dsn, caplog):
    """The chunk's findings go in one call; when that call fails, each organization is written and committed
    on its own, so only the organization whose findings cannot be written is rolled back, logged and counted."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(int(uuid.uuid4().int % 2**32))
    bad, good = _org_with_waste(dsn, rng, now), _org_with_waste(dsn, rng, now)
    with connect(dsn) as conn:
        conn.execute(_UNWRITABLE.replace("%(bad)s", f"'{uuid.UUID(bad)}'"))
        conn.execute("insert into private.detectors (category, function_name, description) "
                     "values ('unwritable', 'private.detect_unwritable', 'a finding the table refuses for one')")
        conn.commit()
    try:
        with caplog.at_level(logging.WARNING, logger="tokentra.worker"):
            summary = recommendations.run_recommendations(dsn, now, orgs=[bad, good])
    finally:
        with connect(dsn) as conn:
            conn.execute("delete from private.detectors where category = 'unwritable'")
            conn.execute("drop function private.detect_unwritable(uuid[], timestamptz)")
            conn.commit()
    assert summary.endswith("1 organizations failed"), summary
    assert _categories(dsn, good) == {"request_deduplication", "unwritable"}
    assert _categories(dsn, bad) == set()  # rolled back whole, its other findings included
    lines = [r.getMessage() for r in caplog.records]
    assert any(bad in line and "risk_is_known" in line for line in lines), lines
    assert not any(good in line for line in lines)
