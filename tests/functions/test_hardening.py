"""Every input gets an answer, never a 500: the cases probing found, refused with the field and the reason;
an unexpected error is a JSON 500 with a request id that keeps the connection usable and logs no value;
oversized headers get 431; CSV text cells cannot start a formula."""

from __future__ import annotations

import csv
import io
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from fastapi import APIRouter

from org_fixtures import Org, add_usage, make_org
from tokentra_cli.functions_server import free_port
from tokentra_functions._app import function_app
from tokentra_functions._http import HEAD_LIMIT

# (method, path, auth kind, request keyword arguments, the field the answer must name)
POISON = [
    ("GET", "/costs", "user", {"params": {"feature": "x\x00"}}, "feature"),
    ("GET", "/costs", "user", {"params": {"team": "\x00"}}, "team"),
    ("GET", "/costs", "user", {"params": {"start_date": "0001-01-01", "end_date": "0001-01-02"}}, "start_date"),
    ("GET", "/usage/timeseries", "user", {"params": {"model": "gpt\x004o"}}, "model"),
    ("GET", "/usage/timeseries", "user", {"params": {"end": "0001-01-01"}}, "end"),
    ("GET", "/usage/timeseries", "user", {"params": {"start": "2026-01-01T00:00:00+23:00"}}, None),
    ("GET", "/optimization/recommendations", "user", {"params": {"category": "retry\x00"}}, "category"),
    ("GET", "/anomalies", "user", {"params": {"since": "9999-12-31T23:59:59-23:59"}}, "since"),
    ("POST", "/budget/reserve", "key", {"json": {"provider": "openai", "model": "gpt\x00"}}, "model"),
    ("POST", "/budget/reserve", "key", {"json": {"provider": "open\x00ai", "model": "gpt-4o"}}, "provider"),
    ("POST", "/budget/check", "key", {"json": {"team": "t\x00"}}, "team"),
    ("POST", "/budget/check", "key", {"content": b'{"team":' * 1_500}, None),  # nested past any parser's depth
    ("POST", "/admin/api-keys", "user", {"json": {"org_id": "{org}", "name": "ci\x00"}}, "name"),
    ("POST", "/route", "key", {"json": {"model": "gpt-4o", "feature": "f\x00"}}, None),
    ("POST", "/route", "key", {"json": {"model": "gpt-4o", "tags": {"k\x00": "v\x00"}}}, None),
    ("POST", "/route", "key", {"json": {"model": "gpt-4o", "provider": "open\x00ai", "task_type": "c\x00"}}, None),
    ("POST", "/route", "key", {"json": {"model": "gpt-4o", "stable_key": "s\x00", "request_id": "r\x00"}}, None),
    ("POST", "/cache/lookup", "key", {"json": {"provider": "open\x00ai", "model": "gpt\x00",
                                                "messages": [{"role": "user", "content": "hi\x00"}]}}, None),
    ("POST", "/cache/store", "key", {"json": {"provider": "openai", "model": "gpt-4o", "task_type": "q\x00",
                                               "messages": [{"role": "user", "content": "hi"}], "system": "s\x00",
                                               "response": {"x": "y\x00"}}}, None),
    ("GET", "/models", "key", {"params": {"provider": "open\x00ai"}}, "provider"),
]


@pytest.fixture(scope="module")
def org(dsn: str) -> Org:
    return make_org(dsn)


def _auth(org: Org, kind: str) -> dict[str, str]:
    return org.auth("owner") if kind == "user" else {"Authorization": f"Bearer {org.key}"}


@pytest.mark.parametrize("method, path, kind, kw, field", POISON,
                         ids=[f"{p[0]} {p[1]} {i}" for i, p in enumerate(POISON)])
def test_poisoned_inputs_are_refused_with_the_field_and_the_connection_stays_usable(
    functions_url: str, org: Org, method: str, path: str, kind: str, kw: dict, field: str | None
) -> None:
    if "json" in kw and kw["json"].get("org_id") == "{org}":
        kw = {**kw, "json": {**kw["json"], "org_id": org.id}}
    with httpx.Client(base_url=functions_url, timeout=30) as client:
        r = client.request(method, path, headers=_auth(org, kind), **kw)
        assert r.status_code in (200, 400, 422), r.text
        if field is not None:
            assert r.status_code == 422 and r.json()["field"] == field, r.text
            assert field in r.json()["message"] and r.json()["errors"][0]["field"] == field
        # the same keep-alive connection answers the next request
        assert client.get("/llm/status", headers=org.auth("owner")).status_code == 200


def test_every_bad_field_is_listed(functions_url: str, org: Org) -> None:
    r = httpx.get(f"{functions_url}/costs", headers=org.auth("owner"), timeout=30,
                  params={"team": "a\x00", "feature": "b\x00", "granularity": "weekly"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"team", "feature", "granularity"}


@pytest.mark.parametrize("value", ["0", "1", "12.5", "1000000"])
def test_recommendations_filter_by_minimum_savings(functions_url: str, org: Org, value: str) -> None:
    r = httpx.get(f"{functions_url}/optimization/recommendations", headers=org.auth("owner"),
                  params={"min_savings": value}, timeout=30)
    assert r.status_code == 200, r.text
    assert all(float(rec["estimated_monthly_savings"]) >= float(value) for rec in r.json()["data"])


def test_feedback_with_a_nul_rejects_that_item_only(functions_url: str, org: Org) -> None:
    r = httpx.post(f"{functions_url}/feedback", headers=_auth(org, "key"), timeout=30,
                   json={"feedback": [{"request_id": "ok-1", "score": 0.5}, {"request_id": "bad\x00", "score": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [1]
    assert r.json()["rejected"][0]["field"] == "request_id"


@pytest.mark.parametrize("size", [100_000, 1_000_000])
def test_oversized_headers_get_431_not_a_reset(functions_url: str, size: int) -> None:
    r = httpx.get(f"{functions_url}/costs", headers={"Authorization": "Bearer " + "a" * size}, timeout=30)
    assert r.status_code == 431 and r.json()["error"] == "headers_too_large"


def _raw_exchange(url: str, chunks: list[bytes]) -> bytes:
    """Send a request in the given pieces over one socket and read until the server closes it."""
    parts = httpx.URL(url)
    with socket.create_connection((parts.host, parts.port), timeout=10) as sock:
        for chunk in chunks:
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer


@pytest.mark.parametrize("piece", [7, 1000, 70_000])
def test_a_head_past_the_limit_gets_431_however_it_is_split(functions_url: str, piece: int) -> None:
    rng = random.Random(piece)
    head = (f"GET {httpx.URL(functions_url).path}/costs HTTP/1.1\r\nHost: x\r\n"
            + "".join(f"X-Filler-{i}: {'v' * rng.randrange(50, 400)}\r\n" for i in range(120)) + "\r\n").encode()
    assert len(head) > HEAD_LIMIT
    answer = _raw_exchange(functions_url, [head[i:i + piece] for i in range(0, len(head), piece)])
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"headers_too_large"' in answer


def test_a_head_under_the_limit_and_a_large_body_are_served(functions_url: str, org: Org) -> None:
    filler = {f"x-filler-{i}": "v" * 100 for i in range((HEAD_LIMIT - 2_000) // 120)}
    at = datetime.now(UTC).isoformat()
    events = [{"request_id": f"big-{i}", "timestamp": at, "provider": "openai", "model": "gpt-4o-mini",
               "input_tokens": 10, "output_tokens": 5, "metadata": {"pad": "p" * 900}} for i in range(300)]
    r = httpx.post(f"{functions_url}/ingest", headers={**_auth(org, "key"), **filler}, json={"events": events},
                   timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 300, r.text[:500]


def test_csv_text_cells_cannot_start_a_formula(functions_url: str, dsn: str, org: Org) -> None:
    rng = random.Random(11)
    hostile = ["=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1)", "+1+1", "-2+3", "\tcmd", "\rcmd"]
    names = hostile + [f"plain-{rng.randrange(10**6)}"]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for name in names:
        add_usage(dsn, org.id, rng.choice(["1.5", "0.003"]), at=now, feature=name,
                  team=name)
    for path, params in (("/costs", {"group_by": "feature,team"}),
                         ("/usage/timeseries", {"group_by": "feature", "granularity": "hour"})):
        r = httpx.get(f"{functions_url}{path}", headers={**org.auth("owner"), "Accept": "text/csv"}, params=params,
                      timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
        rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
        cells = [row["feature"] for row in rows if row.get("feature")]
        assert {c.removeprefix("'") for c in cells} >= set(names)
        for cell in cells:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
            if cell.removeprefix("'") in hostile:
                assert cell.startswith("'")
        # numbers stay numbers
        money = [row.get("total_cost") or row.get("cost_usd") for row in rows]
        assert all(m is None or m == "" or float(m) >= 0 for m in money)


# ---------------------------------------------------------------- an unexpected error, served for real
class Boom(RuntimeError):
    pass


@pytest.fixture(scope="module")
def boom_url() -> Iterator[str]:
    router = APIRouter()

    @router.get("/boom/{secret}")
    async def boom(secret: str, token: str = "") -> dict:
        raise Boom(f"failed with {secret} and {token}")

    @router.get("/fine")
    async def fine() -> dict:
        return {"ok": True}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(function_app(router), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", http="tokentra_functions._http:HttpToolsProtocol",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/functions/v1"
    server.should_exit = True
    thread.join(10)


def test_an_unexpected_error_is_a_json_500_that_keeps_the_connection_and_logs_no_value(
    boom_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tokentra.functions")
    with httpx.Client(base_url=boom_url, timeout=10) as client:
        r = client.get("/boom/s3cr3t-value", params={"token": "another-v4lue"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["error"] == "internal_error" and body["request_id"] == r.headers["x-request-id"]
        assert client.get("/fine").json() == {"ok": True}  # same connection, still usable
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert body["request_id"] in logged and "Boom" in logged and "/boom/{secret}" in logged
    assert "s3cr3t-value" not in logged and "another-v4lue" not in logged
