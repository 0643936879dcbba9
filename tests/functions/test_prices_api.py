"""Prices users control over HTTP: an admin sets the organization's price for a private deployment and the
stored calls are re-priced; a member may not; bad prices name their field; /prices/resolve says where a
model's price comes from; /costs/traces sums cost per trace and session. The real server and database."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from org_fixtures import add_usage, api, make_org
from tokentra_core.db import connect


def test_admin_sets_a_price_and_stored_calls_are_repriced(dsn, functions_url):
    org = make_org(dsn)
    rng = random.Random(7)
    calls = [(rng.randint(1_000, 90_000), rng.randint(10, 5_000)) for _ in range(rng.randint(3, 9))]
    for inp, out in calls:
        add_usage(dsn, org.id, None, provider="azure", model="contoso-gpt4o-eu", input_tokens=inp,
                  output_tokens=out, at=datetime.now(UTC) - timedelta(hours=rng.randint(1, 48)))

    with connect(dsn, autocommit=True) as conn:  # as the minute job would: the rollups bound the re-pricing
        conn.execute("select private.refresh_usage_rollups(now(), null)")

    body = {"org_id": org.id, "model": "contoso-gpt4o-eu", "input_mtok": 2.5, "output_mtok": 10,
            "note": "EU deployment"}
    r = api(functions_url, "POST", "/prices", org.auth("member"), json=body)
    assert r.status_code == 403, r.text
    r = api(functions_url, "POST", "/prices", org.auth("admin"), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["repriced"] == len(calls)
    with connect(dsn) as conn:
        costs = conn.execute("select sum(cost_usd) as c, bool_and(priced) as p from public.usage_records "
                             "where org_id = %s", (org.id,)).fetchone()
    expected = sum(Decimal(inp) * Decimal("2.5") + Decimal(out) * 10 for inp, out in calls) / 1_000_000
    assert costs["p"] and costs["c"] == expected

    # the same instant twice is a conflict; a negative price names its field
    assert api(functions_url, "POST", "/prices", org.auth("admin"), json=body).status_code == 409
    bad = api(functions_url, "POST", "/prices", org.auth("admin"),
              json={**body, "input_mtok": -1, "output_mtok": "x"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"input_mtok", "output_mtok"}

    r = api(functions_url, "GET", "/prices/resolve", org.auth("member"),
            params={"model": "contoso-gpt4o-eu", "provider": "azure", "org_id": org.id})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["source"] == "organization" and data["canonical_model"] == "contoso-gpt4o-eu"
    assert data["price"]["input_mtok"] == 2.5
    r = api(functions_url, "GET", "/prices/resolve", org.auth("member"), params={"model": "gpt-4o-2024-08-06"})
    assert r.json()["data"]["source"] == "genai-prices" and r.json()["data"]["canonical_model"] == "gpt-4o"

    listed = api(functions_url, "GET", "/prices", org.auth("viewer"), params={"org_id": org.id}).json()["data"]
    assert [p["model_id"] for p in listed] == ["contoso-gpt4o-eu"]
    other = make_org(dsn)
    assert api(functions_url, "GET", "/prices", other.auth("admin")).json()["data"] == []


def test_openapi_documents_the_price_endpoints(functions_url):
    doc = api(functions_url, "GET", "/openapi.json", {}).json()
    post = doc["paths"]["/functions/v1/prices"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"org_id", "model", "input_mtok", "output_mtok"} <= set(doc["components"]["schemas"][schema]["required"])
    assert "/functions/v1/prices/resolve" in doc["paths"] and "/functions/v1/costs/traces" in doc["paths"]


def test_cost_per_trace_and_session(dsn, functions_url):
    org = make_org(dsn)
    rng = random.Random(11)
    now = datetime.now(UTC)
    expected: dict[str, Decimal] = {}
    sessions: dict[str, Decimal] = {}
    for _ in range(rng.randint(4, 8)):
        trace, session = uuid.uuid4().hex, f"s-{rng.randint(1, 2)}"
        for _ in range(rng.randint(1, 5)):
            cost = Decimal(rng.randint(1, 10_000)) / 10_000
            add_usage(dsn, org.id, cost, trace_id=trace, session_id=session,
                      at=now - timedelta(minutes=rng.randint(1, 600)))
            expected[trace] = expected.get(trace, Decimal(0)) + cost
            sessions[session] = sessions.get(session, Decimal(0)) + cost
    add_usage(dsn, org.id, Decimal("5"), at=now - timedelta(minutes=5))  # no trace: not in either list

    r = api(functions_url, "GET", "/costs/traces", org.auth("member"), params={"org_id": org.id})
    assert r.status_code == 200, r.text
    got = {t["trace_id"]: Decimal(str(t["cost_usd"])) for t in r.json()["data"]}
    assert got == expected
    costs = [t["cost_usd"] for t in r.json()["data"]]
    assert costs == sorted(costs, reverse=True)
    r = api(functions_url, "GET", "/costs/traces", org.auth("member"),
            params={"org_id": org.id, "group_by": "session"})
    assert {s["session_id"]: Decimal(str(s["cost_usd"])) for s in r.json()["data"]} == sessions
    r = api(functions_url, "GET", "/costs/traces", org.auth("member"),
            params={"start": (now - timedelta(days=40)).isoformat(), "end": now.isoformat()})
    assert r.status_code == 422 and r.json()["field"] == "end"
