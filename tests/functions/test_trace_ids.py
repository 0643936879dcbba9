"""Trace and session ids are stored and cost can be summed per trace: spans exported by the real
OpenTelemetry SDK (its OTLP/HTTP exporter, as docs/otlp.md shows) to /otel/v1/traces, and ingest events
carrying them as fields or as SDK tags (metadata). The real server and database."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from org_fixtures import api, make_org
from tokentra_core.db import connect


def _rows(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select request_id, trace_id, session_id, cost_usd, canonical_model from public.usage_records "
            "where org_id = %s order by occurred_at", (org_id,)
        ).fetchall()


@pytest.mark.parametrize("seed", [2, 13])
def test_spans_from_the_opentelemetry_sdk_keep_their_trace_and_session(dsn, functions_url, seed):
    org = make_org(dsn)
    rng = random.Random(seed)
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    exporter = OTLPSpanExporter(endpoint=f"{functions_url}/otel/v1/traces",
                                headers={"Authorization": f"Bearer {org.key}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    traces: dict[str, int] = {}
    for _ in range(rng.randint(2, 4)):
        session = f"conversation-{rng.randint(1, 2)}"
        with tracer.start_as_current_span("agent turn") as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            traces[trace_id] = 0
            for _ in range(rng.randint(1, 3)):
                with tracer.start_as_current_span("chat gpt-4o") as span:
                    span.set_attributes({
                        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                        "gen_ai.usage.input_tokens": rng.randint(100, 5000),
                        "gen_ai.usage.output_tokens": rng.randint(10, 500), "session.id": session,
                    })
                traces[trace_id] += 1
    provider.shutdown()

    rows = _rows(dsn, org.id)
    assert len(rows) == sum(traces.values())  # the agent spans carry no usage and are skipped
    assert {r["trace_id"] for r in rows} == set(traces)
    assert all(r["session_id"].startswith("conversation-") and r["canonical_model"] == "gpt-4o" for r in rows)

    got = api(functions_url, "GET", "/costs/traces", org.auth("member"), params={"org_id": org.id}).json()["data"]
    assert {t["trace_id"]: t["requests"] for t in got} == traces
    with connect(dsn) as conn:
        per_trace = {r["trace_id"]: r["c"] for r in conn.execute(
            "select trace_id, sum(cost_usd) as c from public.usage_records where org_id = %s group by 1",
            (org.id,)).fetchall()}
    assert {t["trace_id"]: t["cost_usd"] for t in got} == {k: float(v) for k, v in per_trace.items()}


def test_ingest_events_carry_trace_and_session(dsn, functions_url):
    org = make_org(dsn)
    now = datetime.now(UTC) - timedelta(minutes=1)
    base = {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 10,
            "timestamp": now.isoformat()}
    events = [
        {**base, "request_id": "explicit", "trace_id": "t-1", "session_id": "s-1"},
        {**base, "request_id": "tagged", "metadata": {"trace_id": "t-1", "session_id": "s-1", "feature": "chat"}},
        {**base, "request_id": "neither"},
    ]
    r = httpx.post(f"{functions_url}/ingest", json={"events": events},
                   headers={"Authorization": f"Bearer {org.key}"}, timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    rows = {r["request_id"]: (r["trace_id"], r["session_id"]) for r in _rows(dsn, org.id)}
    assert rows == {"explicit": ("t-1", "s-1"), "tagged": ("t-1", "s-1"), "neither": (None, None)}
    # an event sent without the ids keeps its old content hash: a retry of it is a duplicate, not a conflict
    again = httpx.post(f"{functions_url}/ingest", json={"events": events},
                       headers={"Authorization": f"Bearer {org.key}"}, timeout=30).json()
    assert (again["duplicates"], again["rejected"]) == (3, [])
    bad = httpx.post(f"{functions_url}/ingest",
                     json={"events": [{**base, "request_id": str(uuid.uuid4()), "trace_id": "x" * 201}]},
                     headers={"Authorization": f"Bearer {org.key}"}, timeout=30).json()
    assert bad["rejected"][0]["field"] == "trace_id"
