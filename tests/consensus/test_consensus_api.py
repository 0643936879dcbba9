"""GET /functions/v1/optimization/recommendations/{id}/consensus on the real functions server."""

from __future__ import annotations

import uuid

import httpx
from consensus_fixtures import add_recommendation, position, role_of, synthesis

from org_fixtures import api, make_org
from tokentra_dev.testing.llm_servers import Answer
from tokentra_worker.consensus import review_pending


async def test_the_record_of_every_round_position_and_call(servers, settings, org, dsn, functions_url):
    rec = add_recommendation(dsn, org.id)
    servers.script = lambda seen: Answer.json(synthesis() if role_of(seen) == "synthesizer" else position())
    await review_pending(dsn, settings, org=org.id)

    r = api(functions_url, "GET", f"/optimization/recommendations/{rec}/consensus", org.auth("member"))
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    assert body["status"] == "open" and body["caveats"] == ["compare quality on a sample first"]
    [run] = body["runs"]
    assert body["standing_run_id"] == run["id"] and run["status"] == "completed"
    [round1] = run["rounds"]
    assert [p["role"] for p in round1["positions"]] == ["analyst", "skeptic", "advocate"]
    assert round1["score"] >= 0.8 and all(p["verdict"] == "accept" for p in round1["positions"])
    # tokens and cost: the run's totals are its calls', and each call is one request the servers saw
    assert run["round_count"] == 1 and run["call_count"] == len(run["calls"]) == len(servers.seen) == 4
    assert run["input_tokens"] == sum(c["input_tokens"] for c in run["calls"]) > 0
    assert float(run["cost_usd"]) == sum(float(c["cost_usd"]) for c in run["calls"]) > 0
    assert sum(p["input_tokens"] for p in round1["positions"]) + run["calls"][-1]["input_tokens"] == \
        run["input_tokens"]


async def test_not_found_for_another_organization_a_viewer_or_an_unreviewed_one(org, dsn, functions_url):
    rec = add_recommendation(dsn, org.id)
    other = make_org(dsn)
    path = f"/optimization/recommendations/{rec}/consensus"
    for headers in (org.auth("member"), org.auth("viewer"), other.auth("owner")):
        r = api(functions_url, "GET", path, headers)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert api(functions_url, "GET", f"/optimization/recommendations/{uuid.uuid4()}/consensus",
               org.auth("owner")).status_code == 404
    bad = api(functions_url, "GET", "/optimization/recommendations/not-a-uuid/consensus", org.auth("owner"))
    assert bad.status_code == 422 and bad.json()["message"].startswith("rec_id:")
    assert httpx.get(f"{functions_url}{path}").status_code == 401
