"""The detectors that read customers' signals (quality feedback, output format overhead, shared prompt
prefixes): silent just short of their patterns, and fed end to end through the real ingest and feedback
functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_dev.bench_recommendations import load_rows, plant
from tokentra_worker.recommendations import run_org


def _categories(conn, org_id) -> dict[str, dict]:
    rows = conn.execute("select * from public.recommendations where org_id = %s", (org_id,)).fetchall()
    return {r["category"]: r for r in rows}


def _org(db, name: str) -> str:
    return str(admin.create_org(db, f"sig-{name}-{uuid.uuid4().hex[:6]}").id)


def test_pareto_stays_silent_when_the_cheaper_model_is_worse_or_barely_scored(db):
    now, rng = datetime.now(UTC), np.random.default_rng(21)
    worse = _org(db, "worse")
    rows = plant("quality_cost_pareto", 800, now, rng)
    for r in rows:  # the cheap model's answers are clearly worse
        if r["model"] == "gpt-4o-mini" and r["quality_score"] is not None:
            r["quality_score"] = round(r["quality_score"] - 0.15, 3)
    load_rows(db, worse, rows)
    run_org(db, worse, now)
    assert "quality_cost_pareto" not in _categories(db, worse)

    sparse = _org(db, "sparse")
    rows = plant("quality_cost_pareto", 800, now, rng)
    scored = 0
    for r in rows:  # equal quality, but only 20 scored calls of the cheap model
        if r["model"] == "gpt-4o-mini" and r["quality_score"] is not None:
            scored += 1
            r["quality_score"] = r["quality_score"] if scored <= 20 else None
    load_rows(db, sparse, rows)
    run_org(db, sparse, now)
    assert "quality_cost_pareto" not in _categories(db, sparse)


def test_pareto_evidence_carries_the_frontier_and_a_routing_rule(db):
    now, rng = datetime.now(UTC), np.random.default_rng(22)
    org = _org(db, "frontier")
    load_rows(db, org, plant("quality_cost_pareto", 800, now, rng))
    run_org(db, org, now)
    rec = _categories(db, org)["quality_cost_pareto"]
    ev = rec["evidence"]
    assert (ev["model"], ev["target_model"]) == ("gpt-4o", "gpt-4o-mini")
    assert ev["quality_drop_upper_95"] <= ev["quality_tolerance"]
    points = {p["model"]: p for p in ev["frontier"]}
    assert points["gpt-4o-mini"]["on_frontier"] and points["gpt-4o-mini"]["cost_per_request"] < points["gpt-4o"][
        "cost_per_request"]
    assert len(ev["sample_request_ids"]) == 5 and ev["series"]
    assert rec["suggested_rule"]["action"] == {"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"}


def test_output_format_stays_silent_on_compact_answers(db):
    now, rng = datetime.now(UTC), np.random.default_rng(23)
    org = _org(db, "compact")
    rows = plant("output_format_optimization", 600, now, rng)
    for r in rows:
        r["metadata"]["tokentra"]["output_overhead"] = round(float(rng.uniform(0, 0.08)), 3)
    load_rows(db, org, rows)
    run_org(db, org, now)
    assert "output_format_optimization" not in _categories(db, org)


def test_prefix_caching_stays_silent_on_sparse_repeats_and_short_prefixes(db):
    now, rng = datetime.now(UTC), np.random.default_rng(24)
    org = _org(db, "sparse-prefix")
    rows = plant("partial_response_caching", 600, now, rng)
    # The same documents, but each question at least 10 minutes after the previous one: caches are cold.
    for i, r in enumerate(sorted(rows, key=lambda r: r["occurred_at"])):
        r["occurred_at"] = now - timedelta(minutes=10 * (i + 1))
    load_rows(db, org, rows)
    short = plant("partial_response_caching", 600, now, rng)
    for r in short:  # a repeated prefix of about 800 tokens: below what providers cache
        r.update(feature="short-doc", input_tokens=1000)
        r["metadata"]["tokentra"]["prefix_share"] = 0.8
    load_rows(db, org, short)
    run_org(db, org, now)
    assert "partial_response_caching" not in _categories(db, org)


def test_prefix_caching_leaves_a_long_system_prompt_to_context_window_efficiency(db):
    now, rng = datetime.now(UTC), np.random.default_rng(25)
    org = _org(db, "system-prefix")
    rows = plant("partial_response_caching", 600, now, rng)
    system = uuid.uuid4().hex
    for r in rows:  # every document comes after one long system prompt
        r["system_prompt_hash"] = system
    load_rows(db, org, rows)
    run_org(db, org, now)
    found = _categories(db, org)
    assert "context_window_efficiency" in found and "partial_response_caching" not in found


def _post(url: str, path: str, key: str, body: dict) -> dict:
    r = httpx.post(f"{url}/{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == [], r.text
    return r.json()


def test_signals_sent_through_ingest_and_feedback_raise_the_three_recommendations(functions_url, tenant, dsn):
    now, rng = datetime.now(UTC), np.random.default_rng(26)
    events, scores = [], []

    def add(minutes_ago: float, **fields) -> str:
        rid = str(uuid.uuid4())
        events.append({"request_id": rid, "provider": "openai", "input_tokens": 1200, "output_tokens": 300,
                       "timestamp": (now - timedelta(minutes=minutes_ago)).isoformat(), **fields})
        return rid

    for i in range(120):  # one feature on two models of equal quality, every call scored
        model = "gpt-4o" if i % 2 else "gpt-4o-mini"
        rid = add(5 + i * 9, model=model, metadata={"feature": "answers"})
        scores.append({"request_id": rid, "score": round(float(np.clip(rng.normal(0.85, 0.05), 0, 1)), 3)})
    for i in range(60):  # JSON answers with a third of their characters around the JSON
        add(7 + i * 17, model="gpt-4o", output_tokens=1000, response_format="json_object", output_overhead=0.33,
            metadata={"feature": "extract"})
    prefix = uuid.uuid4().hex
    for i in range(60):  # one long document asked about every minute, never read from the cache
        add(3 + i, provider="anthropic", model="claude-sonnet-4-0", input_tokens=4200, prefix_hash=prefix,
            prefix_share=round(4000 / 4200, 6), metadata={"feature": "doc-qa"})
    assert _post(functions_url, "ingest", tenant.key, {"events": events})["accepted"] == len(events)
    assert _post(functions_url, "feedback", tenant.key, {"feedback": scores}) == {
        "accepted": 120, "unmatched": 0, "rejected": []}

    with connect(dsn) as conn:
        run_org(conn, tenant.org_id, now)
        found = _categories(conn, tenant.org_id)
        conn.commit()
    assert found["quality_cost_pareto"]["scope_value"] == "answers"
    assert found["output_format_optimization"]["scope_value"] == "extract"
    assert found["partial_response_caching"]["scope_value"] == "doc-qa"
    for rec in (found[c] for c in ("quality_cost_pareto", "output_format_optimization", "partial_response_caching")):
        assert float(rec["estimated_monthly_savings"]) > 1 and rec["evidence"]["sample_request_ids"]
