"""A re-price over more than 400 days (the usage retention) is refused by the SQL function itself, and the
API answers that refusal as a 422 naming the field, not a 500."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx

from org_fixtures import make_org


def test_a_reprice_range_past_400_days_is_a_422(dsn, functions_url):
    org = make_org(dsn)
    today = datetime.now(UTC).date()
    body = {"org_id": org.id, "provider": "openai", "canonical_model": "gpt-4o",
            "start_date": (today - timedelta(days=random.randint(400, 4000))).isoformat(),
            "end_date": today.isoformat()}
    r = httpx.post(f"{functions_url}/reconciliation/reprice", json=body, headers=org.auth("admin"), timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "last_day" and "at most 400 days" in r.json()["reason"]
    # 400 days is a range it takes (and finds no price gap of ours to fix there)
    body["start_date"] = (today - timedelta(days=399)).isoformat()
    r = httpx.post(f"{functions_url}/reconciliation/reprice", json=body, headers=org.auth("admin"), timeout=30)
    assert r.status_code == 422 and r.json()["field"] == "canonical_model", r.text
