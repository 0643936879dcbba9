"""GET .../anomalies/{id}/explanation and .../optimization/recommendations/{id}/explanation, under RLS."""

from __future__ import annotations

import uuid

import httpx
from explain_fixtures import Spike, grounded

from org_fixtures import Org, api
from tokentra_worker.explanations import run_explanations
from tokentra_worker.jobs import JobContext


def test_the_api_returns_the_explanation_with_its_evidence(dsn, functions_url, servers, llm_on, org: Org,
                                                           spike: Spike):
    servers.script = grounded
    run_explanations(JobContext(dsn, llm_on, "test"), orgs=[org.id])

    r = api(functions_url, "GET", f"/anomalies/{spike.anomaly_id}/explanation", org.auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()["data"]
    assert body["anomaly_id"] == spike.anomaly_id and body["source"] == "llm"
    assert body["headline"].startswith("Spend rose 400%") and body["model"] == "claude-haiku-4-5"
    assert body["llm_calls"] == 1 and body["input_tokens"] > 0 and float(body["cost_usd"]) > 0
    assert body["evidence"]["cost_change_split"]["volume_usd"] == 0.3 and body["rejected"] == []

    r = api(functions_url, "GET", f"/optimization/recommendations/{spike.recommendation_id}/explanation",
            org.auth("member"))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["source"] == "llm" and "$940.25" in r.json()["data"]["headline"]

    # viewers read neither anomalies nor recommendations, outsiders nothing; unknown ids are 404, malformed
    # ones 422, no token 401
    for path, role in ((f"/anomalies/{spike.anomaly_id}/explanation", "viewer"),
                       (f"/optimization/recommendations/{spike.recommendation_id}/explanation", "viewer"),
                       (f"/anomalies/{spike.anomaly_id}/explanation", "outsider"),
                       (f"/optimization/recommendations/{spike.recommendation_id}/explanation", "outsider"),
                       (f"/anomalies/{uuid.uuid4()}/explanation", "admin")):
        r = api(functions_url, "GET", path, org.auth(role))
        assert r.status_code == 404 and r.json()["error"] == "not_found", (path, role, r.text)
    r = api(functions_url, "GET", "/anomalies/not-a-uuid/explanation", org.auth("admin"))
    assert r.status_code == 422 and r.json()["message"].startswith("anomaly_id:"), r.text
    assert httpx.get(f"{functions_url}/anomalies/{spike.anomaly_id}/explanation", timeout=10).status_code == 401
