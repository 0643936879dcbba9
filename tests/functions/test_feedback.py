"""Quality feedback and the SDK's client-side signals, over real HTTP against the real database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx

from tokentra_core.db import connect


def _event(**over) -> dict:
    base = {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1200,
            "output_tokens": 300, "metadata": {"feature": "extract"}, "timestamp": datetime.now(UTC).isoformat()}
    return {**base, **over}


def _post(url: str, path: str, key: str | None, body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/{path}", content=content, headers=headers, timeout=30)


def _scores(dsn: str, org: str) -> dict[str, float]:
    with connect(dsn) as conn:
        rows = conn.execute("select request_id, score::float8 as s from private.usage_feedback where org_id = %s",
                            (org,)).fetchall()
    return {r["request_id"]: r["s"] for r in rows}


def test_feedback_is_stored_per_request_and_the_latest_score_wins(functions_url, tenant, dsn):
    known = _event()
    assert _post(functions_url, "ingest", tenant.key, {"events": [known]}).json()["accepted"] == 1
    r = _post(functions_url, "feedback", tenant.key, {"feedback": [
        {"request_id": known["request_id"], "score": 0.2},
        {"request_id": "not-reported-yet", "score": 1},
        {"request_id": known["request_id"], "score": 0.9},  # later in the batch: wins
    ]})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "unmatched": 1, "rejected": []}
    assert _scores(dsn, tenant.org_id) == {known["request_id"]: 0.9, "not-reported-yet": 1.0}
    # A later request replaces the score.
    r = _post(functions_url, "feedback", tenant.key, {"feedback": [{"request_id": known["request_id"], "score": 0}]})
    assert r.json() == {"accepted": 1, "unmatched": 0, "rejected": []}
    assert _scores(dsn, tenant.org_id)[known["request_id"]] == 0.0


def test_bad_feedback_is_rejected_by_index_and_field(functions_url, tenant, dsn):
    r = _post(functions_url, "feedback", tenant.key, {"feedback": [
        {"request_id": "a", "score": 1.5}, {"score": 0.5}, {"request_id": "c", "score": "good"},
        {"request_id": "d", "score": 0.5}, "not an object",
    ]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["unmatched"]) == (1, 1)
    fields = {x["index"]: x["field"] for x in body["rejected"]}
    assert fields == {0: "score", 1: "request_id", 2: "score", 4: "feedback"}
    assert _scores(dsn, tenant.org_id) == {"d": 0.5}


def test_feedback_request_shape_and_key(functions_url, tenant):
    assert _post(functions_url, "feedback", "tt_live_" + "x" * 43, {"feedback": []}).status_code == 401
    assert _post(functions_url, "feedback", None, {"feedback": []}).status_code == 401
    assert _post(functions_url, "feedback", tenant.key, b"{not json").status_code == 400
    r = _post(functions_url, "feedback", tenant.key, {"events": []})
    assert r.status_code == 422 and r.json()["message"].startswith("feedback:")
    many = {"feedback": [{"request_id": str(i), "score": 1} for i in range(1001)]}
    assert _post(functions_url, "feedback", tenant.key, many).status_code == 413


def test_signals_are_validated_and_stored_under_metadata(functions_url, tenant, dsn):
    good = _event(response_format="json_object", output_overhead=0.25, prefix_hash="ab" * 32, prefix_share=0.75)
    plain = _event()
    bad = [
        _event(output_overhead=1.5),
        _event(response_format="xml"),
        _event(prefix_hash="ab" * 32),  # without its share
        _event(metadata={"tokentra": {"output_overhead": 0.9}}),  # the SDK's key, forged in metadata
    ]
    r = _post(functions_url, "ingest", tenant.key, {"events": [good, plain, *bad]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    fields = {x["index"]: (x["field"], x["message"]) for x in body["rejected"]}
    assert fields[2][0] == "output_overhead" and fields[3][0] == "response_format"
    assert "prefix_hash and prefix_share" in fields[4][1]
    assert fields[5][0] == "metadata.tokentra" and "reserved" in fields[5][1]  # the reserved key, by its path
    with connect(dsn) as conn:
        rows = {r["request_id"]: r["metadata"] for r in conn.execute(
            "select request_id, metadata from public.usage_records where org_id = %s", (tenant.org_id,))}
    assert rows[good["request_id"]] == {"tokentra": {"response_format": "json_object", "output_overhead": 0.25,
                                                     "prefix_hash": "ab" * 32, "prefix_share": 0.75}}
    assert rows[plain["request_id"]] == {}
    # The same event again is a duplicate, not a conflict: the signals are part of its content.
    again = _post(functions_url, "ingest", tenant.key, {"events": [good]}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
