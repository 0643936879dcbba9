"""Ingest accepts the routing decision a call was made under; usage rows carry it as columns."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import httpx

from tokentra_core.db import connect


def event(**over) -> dict:
    base = {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1200,
            "output_tokens": 300, "metadata": {"ticket": 7}, "timestamp": datetime.now(UTC).isoformat()}
    base.update(over)
    return base


def post(url: str, key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/ingest", content=json.dumps(body).encode(), headers={"Authorization": f"Bearer {key}"},
                      timeout=30)


def stored(dsn: str, org: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("select * from public.usage_records where org_id = %s", (org,)).fetchall()


def test_routing_fields_land_on_the_usage_row(functions_url, tenant, dsn):
    rng = random.Random()
    rule = str(uuid.uuid4())
    arms = [rng.choice(["treatment", "control", "rule", "strategy"]) for _ in range(rng.randint(3, 12))]
    events = [event(routing_rule_id=rule if arm != "strategy" else None, routing_arm=arm,
                    routed_from_model="gpt-4o" if arm != "control" else None,
                    routed_from_provider="openai" if arm != "control" else None) for arm in arms]
    events.append(event())  # a call made without routing
    r = post(functions_url, tenant.key, {"events": events})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events)
    rows = {row["request_id"]: row for row in stored(dsn, tenant.org_id)}
    for sent in events:
        row = rows[sent["request_id"]]
        assert row["routing_arm"] == sent.get("routing_arm")
        assert (str(row["routing_rule_id"]) if row["routing_rule_id"] else None) == sent.get("routing_rule_id")
        assert row["routed_from_model"] == sent.get("routed_from_model")
        # the customer's own metadata is untouched; the decision rides in the SDK's reserved key
        assert {k: v for k, v in row["metadata"].items() if k != "tokentra"} == {"ticket": 7}


def test_malformed_routing_fields_are_rejected_by_field(functions_url, tenant):
    bad = [event(routing_rule_id="not-a-uuid"), event(routing_arm="sometimes"),
           event(routed_from_provider="")]
    r = post(functions_url, tenant.key, {"events": bad + [event()]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 1
    assert sorted((x["index"], x["field"]) for x in body["rejected"]) == [
        (0, "routing_rule_id"), (1, "routing_arm"), (2, "routed_from_provider")]
