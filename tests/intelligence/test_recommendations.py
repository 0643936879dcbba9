"""The recommendation engine: each detector fires on its planted pattern with the savings of the planted
rows (within 15%) and stays silent on clean traffic; the lifecycle end to end through the API."""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from org_fixtures import Org, api
from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_dev.bench_recommendations import CATEGORIES, clean_rows, load_rows, plant, true_savings
from tokentra_worker.recommendations import run_org, run_recommendations


def _recs(conn, org_id) -> list[dict]:
    return conn.execute(
        "select * from public.recommendations where org_id = %s order by category", (org_id,)
    ).fetchall()


@pytest.mark.parametrize("category", CATEGORIES)
def test_detector_fires_on_its_pattern_with_true_savings(db, category: str):
    now = datetime.now(UTC)
    # A seed fixed per category: str hash() changes with each process, and a detector that decides at 95%
    # confidence misses a few seeds in a thousand (quality_cost_pareto missed 7 of 1,000).
    rng = np.random.default_rng(zlib.crc32(category.encode()))
    org = admin.create_org(db, f"rec-{category}-{uuid.uuid4().hex[:6]}")
    load_rows(db, str(org.id), plant(category, 1000, now, rng) + clean_rows(100, now, rng))
    run_org(db, str(org.id), now)
    recs = _recs(db, org.id)
    mine = [r for r in recs if r["category"] == category]
    assert len(mine) == 1, [r["category"] for r in recs]
    rec = mine[0]
    truth = true_savings(db, str(org.id), category)
    assert abs(float(rec["estimated_monthly_savings"]) - truth) <= 0.15 * truth
    # Where, how much, why: scope in title and evidence, costs, method, steps, a series or samples.
    assert rec["scope_type"] in ("feature", "end_user") and rec["scope_value"] in rec["title"]
    assert rec["evidence"]["scope"] == {rec["scope_type"]: rec["scope_value"]}
    assert float(rec["current_monthly_cost"]) > float(rec["projected_monthly_cost"]) >= 0
    assert (
        rec["savings_method"] and rec["implementation_steps"] and rec["priority"] and rec["status"] == "open"
    )
    assert rec["evidence"].get("series") or rec["evidence"].get("sample_request_ids")


def test_clean_traffic_raises_nothing(db):
    now = datetime.now(UTC)
    org = admin.create_org(db, f"rec-clean-{uuid.uuid4().hex[:6]}")
    load_rows(db, str(org.id), clean_rows(1500, now, np.random.default_rng(3)))
    run_org(db, str(org.id), now)
    assert _recs(db, org.id) == []


def test_lifecycle_through_the_api(dsn: str, org: Org, functions_url: str):
    now = datetime.now(UTC)
    rng = np.random.default_rng(8)
    with connect(dsn) as conn:
        for category, n in (
            ("task_aware_routing", 800),
            ("error_reduction", 800),
            ("timeout_cost_analysis", 2000),
        ):
            load_rows(conn, org.id, plant(category, n, now, rng))
        conn.commit()
    run_recommendations(dsn, now=now, orgs=[org.id])
    run_recommendations(dsn, now=now, orgs=[org.id])  # fires again: updates, no duplicates
    url = "/optimization/recommendations"
    listed = api(functions_url, "GET", url, org.auth("member")).json()["data"]
    assert sorted(r["category"] for r in listed) == [
        "error_reduction",
        "task_aware_routing",
        "timeout_cost_analysis",
    ]
    savings = [float(r["estimated_monthly_savings"]) for r in listed]
    assert savings == sorted(savings, reverse=True)
    assert api(functions_url, "GET", url, org.auth("outsider")).status_code == 403
    assert httpx.get(f"{functions_url}{url}", timeout=10).status_code == 401
    by = {r["category"]: r for r in listed}
    only = api(functions_url, "GET", url, org.auth("member"), params={"category": "error_reduction"}).json()[
        "data"
    ]
    assert [r["id"] for r in only] == [by["error_reduction"]["id"]]

    # Apply as an A/B test on half the traffic: the suggested routing rule exists, the baseline is frozen.
    routing = by["task_aware_routing"]
    assert api(functions_url, "POST", f"{url}/{routing['id']}/apply", org.auth("member")).status_code == 404
    r = api(
        functions_url, "POST", f"{url}/{routing['id']}/apply", org.auth("owner"), json={"traffic_share": 0.5}
    )
    assert r.status_code == 200, r.text
    rule = r.json()["data"]["routing_rule"]
    assert rule["action"]["model"] == "gpt-4o-mini" and float(rule["traffic_share"]) == 0.5
    assert rule["conditions"] == {"feature": "classify", "task_type": "classification", "model": "gpt-4o"}
    assert api(functions_url, "POST", f"{url}/{routing['id']}/apply", org.auth("owner")).status_code == 404

    # Dismiss with a reason: never reopened.
    err = by["error_reduction"]
    assert (
        api(functions_url, "POST", f"{url}/{err['id']}/dismiss", org.auth("owner"), json={}).status_code
        == 422
    )
    r = api(
        functions_url,
        "POST",
        f"{url}/{err['id']}/dismiss",
        org.auth("owner"),
        json={"reason": "known outage"},
    )
    assert r.status_code == 200, r.text

    # The timeouts go away (rows deleted): that recommendation expires. The classify traffic now runs on
    # the cheap model: the applied one measures realised savings against its baseline.
    with connect(dsn) as conn:
        conn.execute("delete from public.usage_records where org_id = %s and feature = 'report'", (org.id,))
        load_rows(
            conn,
            org.id,
            [
                {**row, "model": "gpt-4o-mini", "occurred_at": now + timedelta(minutes=1 + i)}
                for i, row in enumerate(plant("task_aware_routing", 50, now, rng))
            ],
        )
        conn.commit()
    run_recommendations(dsn, now=now + timedelta(hours=1), orgs=[org.id])
    with connect(dsn) as conn:
        recs = {r["category"]: r for r in _recs(conn, org.id)}
    assert recs["error_reduction"]["status"] == "dismissed"
    assert recs["error_reduction"]["dismiss_reason"] == "known outage"
    assert recs["timeout_cost_analysis"]["status"] == "expired"
    applied = recs["task_aware_routing"]
    assert applied["status"] == "applied" and applied["baseline"]["cost_per_request"] > 0
    assert applied["realised_monthly_savings"] is not None and float(applied["realised_monthly_savings"]) > 0


def test_arbitrage_and_rate_limits_stay_silent_short_of_their_patterns(db):
    """A model cheaper only at a reseller (not a host we would route to), and a rate-limited share under
    the threshold, raise nothing."""
    now = datetime.now(UTC)
    rng = np.random.default_rng(11)
    org = admin.create_org(db, f"rec-near-{uuid.uuid4().hex[:6]}")
    resold = db.execute(
        "select count(*) as n from public.model_prices where model_id = 'claude-haiku-4-5' "
        "and provider_id = 'quicksilverpro'"
    ).fetchone()["n"]
    assert resold, "the pricing tables list a reseller for claude-haiku-4-5"
    rows = plant("provider_arbitrage", 600, now, rng)
    for r in rows:
        r.update(provider="anthropic", model="claude-haiku-4-5", feature="haiku")
    rows += [
        {**r, "status": "rate_limited" if rng.random() < 0.01 else "success"}
        for r in plant("rate_limit_optimization", 600, now, rng)
        if r["status"] == "success"
    ]
    load_rows(db, str(org.id), rows)
    run_org(db, str(org.id), now)
    cats = {r["category"] for r in _recs(db, org.id)}
    assert not cats & {"provider_arbitrage", "rate_limit_optimization"}, cats
