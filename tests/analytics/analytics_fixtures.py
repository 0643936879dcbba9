"""Helpers of the analytics tests: usage sent through the real ingest function, HTTP reads as a signed-in
user, and raw-row aggregates to compare with."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from org_fixtures import Org
from tokentra_core.db import connect


def event(at: datetime | None = None, **over) -> dict:
    """One ingest event (priced model unless overridden)."""
    base = {
        "request_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_tokens": 200,
        "latency_ms": 840,
        "status": "success",
        "metadata": {"feature": "summarize", "team": "search", "user_id": "u-1"},
        "timestamp": (at or datetime.now(UTC)).isoformat(),
    }
    base.update(over)
    return base


def ingest(url: str, org: Org, events: list[dict]) -> None:
    for i in range(0, len(events), 1000):
        r = httpx.post(
            f"{url}/ingest",
            json={"events": events[i : i + 1000]},
            headers={"Authorization": f"Bearer {org.key}"},
            timeout=60,
        )
        assert r.status_code == 200 and not r.json()["rejected"], r.text


def get(url: str, path: str, token: str | None, accept: str | None = None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    return httpx.get(f"{url}{path}", params=params, headers=headers, timeout=30)


def exact(response: httpx.Response) -> dict:
    """The JSON body with every number as an exact Decimal (how the API is meant to be read)."""
    return json.loads(response.text, parse_float=Decimal)


def raw(dsn: str, sql: str, *params) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()


def traffic(days: int = 3, n: int = 120, seed: int = 0) -> list[dict]:
    """A spread of calls over the last `days` days: several models, teams, features, users, statuses."""
    now = datetime.now(UTC)
    models = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-20250514")]
    out = []
    for i in range(n):
        provider, model = models[(i + seed) % 3]
        at = now - timedelta(minutes=(i * 37 + seed) % (days * 24 * 60))
        out.append(
            event(
                at,
                provider=provider,
                model=model,
                input_tokens=100 + i * 7,
                output_tokens=10 + i,
                cached_tokens=(i % 4) * 10,
                latency_ms=50 + (i * 97) % 4000,
                status=["success", "success", "success", "error", "timeout"][i % 5],
                retry_count=i % 3,
                metadata={"feature": f"feature-{i % 4}", "team": f"team-{i % 3}", "user_id": f"user-{i % 7}"},
            )
        )
    return out
