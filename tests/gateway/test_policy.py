"""Inline policy through the real clients: keys (revoked, expired, rotated), allowed models and providers,
rate limits, the strict budget under concurrency, the runaway kill-switch, fallbacks, a client leaving
mid-stream, and provider keys never reaching the client."""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import time
import uuid
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from gateway_helpers import LOOP_LIMIT, TIMEOUT_SECONDS, one_prompt
from typer.testing import CliRunner

from tokentra_cli.cli import app as cli
from tokentra_core.settings import get_settings
from tokentra_dev.testing.gateway_upstream import ANTHROPIC_KEY, PROVIDER_KEY

runner = CliRunner()


def eventually(call, refused: type[Exception] | None, within: float = 30.0) -> Exception | None:
    """Run `call` until it is refused with `refused` (or, with None, until it succeeds), within `within`
    seconds: a key's change reaches the gateway's cache by a notification, so it takes effect moments after
    the command that made it, not at the instant it returns. Answers the refusal (None when it succeeded).
    The bound is generous because it costs nothing when the change lands at once, and on a busy machine
    moments can be seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            call()
            outcome: Exception | None = None
        except Exception as exc:  # noqa: BLE001 - checked below against what was expected
            outcome = exc
        if (outcome is None) if refused is None else isinstance(outcome, refused):
            return outcome
        if time.monotonic() > deadline:
            if outcome is not None:
                raise outcome
            raise AssertionError(f"still admitted after {within} s, expected {refused.__name__}")
        time.sleep(0.05)


def test_revoked_expired_and_rotated_keys(gw, openai_client, anthropic_client) -> None:
    key = gw.key()
    client = openai_client(key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
    # rotation: the same key id answers to the new secret only
    rotated = runner.invoke(cli, ["virtual-keys", "rotate", str(gw.keys[key]), "--json"])
    assert rotated.exit_code == 0, rotated.output
    new_key = __import__("json").loads(rotated.output)["key"]
    gw.keys[new_key] = gw.keys[key]
    admitted: list[object] = []  # calls the old secret got in before the rotation reached the cache
    eventually(lambda: admitted.append(client.chat.completions.create(model="gpt-4o-mini",
                                                                      messages=one_prompt())),
               openai.AuthenticationError)
    openai_client(new_key, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
    # revoked: refused within moments, by the CLI as operators do it
    revoked = runner.invoke(cli, ["virtual-keys", "revoke", str(gw.keys[key])])
    assert revoked.exit_code == 0, revoked.output
    refused = eventually(lambda: openai_client(new_key, max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=one_prompt()), openai.AuthenticationError)
    assert isinstance(refused, openai.AuthenticationError) and refused.code == "invalid_api_key"
    # expired: time simulated by back-dating the expiry
    expiring = gw.key()
    gw.sql("update public.api_keys set expires_at = now() - interval '1 second' where id = %s", gw.keys[expiring])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(expiring, max_retries=0).messages.create(model="claude-haiku-4-5", max_tokens=5,
                                                                  messages=one_prompt())
    # an ingest key is not a virtual key
    with pytest.raises(openai.AuthenticationError):
        openai_client("tt_live_" + "x" * 43, max_retries=0).models.list()
    assert len(gw.usage(new_key, 2 + len(admitted))) == 2 + len(admitted)


def test_disallowed_models_and_providers(gw, openai_client, anthropic_client) -> None:
    key = gw.key(models=["gpt-4o-mini", "claude-haiku-4-5"], providers=["openai"])
    client = openai_client(key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=one_prompt())
    assert refused.value.code == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError):
        anthropic_client(key, max_retries=0).messages.create(model="claude-haiku-4-5", max_tokens=5,
                                                              messages=one_prompt())
    # the model list shows only what the key may call
    assert [m.id for m in client.models.list().data] == ["gpt-4o-mini"]
    assert len(gw.usage(key, 1)) == 1, "refused calls reach no provider and record no usage"


def test_rate_limits_requests_and_tokens(gw, openai_client) -> None:
    key = gw.key(rpm=3)
    client = openai_client(key, max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
    # the window slides: a minute filled past its limit still weighs on the next one for a while
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 120
    assert limited.value.code == "rate_limit_exceeded"
    tokens_key = gw.key(tpm=100)
    tokens_client = openai_client(tokens_key, max_retries=0)
    tokens_client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt(), max_tokens=150)
    gw.usage(tokens_key, 1)
    # The writer counts the tokens right after storing the row: refused once it has (how soon depends on
    # the machine's load, so no fixed pause).
    over = eventually(lambda: tokens_client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt()),
                      openai.RateLimitError)
    assert isinstance(over, openai.RateLimitError) and over.code == "tokens_rate_limit_exceeded"


def test_hard_budget_admits_exactly_what_fits_under_100_concurrent_calls(gw, openai_client, upstream) -> None:
    key = gw.key(budget=Decimal("1.00"), period="daily")
    # Every call may cost up to ~$0.03 (50,000 output tokens of gpt-4o-mini) and, as the provider reports
    # it, costs exactly that: then however the 100 calls interleave, exactly floor($1 / $0.03) fit.
    upstream.app.exact_usage = True
    upstream.app.delay = 0.5
    try:
        async def burst() -> list[object]:
            async with openai_client(key, asynchronous=True, max_retries=0, timeout=600) as client:
                async def one() -> object:
                    try:
                        return await client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt(),
                                                                    max_completion_tokens=50_000)
                    except openai.RateLimitError as exc:
                        return exc
                return await asyncio.gather(*(one() for _ in range(100)))

        results = asyncio.run(burst())
    finally:
        upstream.app.delay = 0.0
        upstream.app.exact_usage = False
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    admitted = [r for r in results if not isinstance(r, openai.RateLimitError)]
    assert refused and all(r.code == "budget_exceeded" for r in refused)
    # Calls are admitted in memory against leases; the usage writer, after the answers, stores their usage,
    # then closes each call's reservation and takes it off its lease (in that order): wait for both.
    rows = gw.usage(key, len(admitted), timeout=30)
    assert len(rows) == len(admitted)
    held = gw.calls(len(admitted), key=key)
    amounts = {r["amount_usd"] for r in held}
    assert len(held) == len(admitted) and len(amounts) == 1, "one reservation per admitted call, all equal"
    amount = amounts.pop()
    assert len(admitted) == math.floor(Decimal(1) / amount), "exactly the calls that fit were admitted"
    assert all(abs(r["cost_usd"] - amount) < Decimal("0.000001") for r in rows), "each cost its reservation"
    assert sum(r["cost_usd"] for r in rows) <= Decimal(1)
    # every reservation was committed at its stored usage's cost, none left holding the budget
    states = gw.sql("select status, count(*) as n from private.budget_reservations where api_key_id = %s "
                    "and kind = 'call' group by 1", gw.keys[key])
    assert [(s["status"], s["n"]) for s in states] == [("committed", len(admitted))]
    cost = {r["request_id"]: r["cost_usd"] for r in rows}
    assert {r["request_id"]: r["actual_cost_usd"] for r in held} == cost, "each closed at its call's stored cost"
    # calls were admitted in memory against leases; what leases still hold and what was spent fit the budget
    leased = gw.sql("select coalesce(sum(amount_usd), 0) as held from private.budget_reservations "
                    "where api_key_id = %s and kind = 'lease' and status = 'open'", gw.keys[key])[0]["held"]
    assert leased + sum(r["cost_usd"] for r in rows) <= Decimal(1)


def test_runaway_loop_kill_switch(gw, openai_client) -> None:
    key = gw.key()
    client = openai_client(key, max_retries=0)
    loop = one_prompt()
    for _ in range(LOOP_LIMIT):
        client.chat.completions.create(model="gpt-4o-mini", messages=loop)
    with pytest.raises(openai.RateLimitError) as stopped:
        client.chat.completions.create(model="gpt-4o-mini", messages=loop)
    assert stopped.value.code == "runaway_loop_blocked"
    assert stopped.value.response.headers["x-should-retry"] == "false"
    # the key is stopped for every prompt until an admin lifts it
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
    listed = runner.invoke(cli, ["virtual-keys", "list", "--org", str(gw.org_id), "--json"])
    assert '"block_reason": "runaway_loop"' in listed.output
    lifted = runner.invoke(cli, ["virtual-keys", "unblock", str(gw.keys[key])])
    assert lifted.exit_code == 0, lifted.output
    assert eventually(lambda: client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt()),
                      None) is None


@pytest.mark.parametrize("stream", [False, True])
def test_fallbacks_on_5xx_429_and_timeout(gw, openai_client, stream: bool) -> None:
    key = gw.key()
    client = openai_client(key, max_retries=0, timeout=30)
    for primary in ("fail-503", "fail-429", "hang-forever"):
        raw = client.chat.completions.with_raw_response.create(
            model=primary, messages=one_prompt(), stream=stream,
            extra_headers={"x-tokentra-fallbacks": "fail-500,gpt-4o-mini"})
        assert raw.headers["x-tokentra-model"] == "gpt-4o-mini"
        assert raw.headers["x-tokentra-fallback-from"] == f"{primary},fail-500"
        parsed = raw.parse()
        text = ("".join(c.choices[0].delta.content or "" for c in parsed if c.choices) if stream
                else parsed.choices[0].message.content)
        assert text == "Paris."
    rows = gw.usage(key, 9, timeout=20)
    final = [r for r in rows if r["status"] == "success"]
    assert [r["routed_from_model"] for r in final] == ["fail-503", "fail-429", "hang-forever"]
    assert all(r["model"] == "gpt-4o-mini-2024-07-18" for r in final)
    failed = sorted((r["model"], r["status"]) for r in rows if r["status"] != "success")
    assert failed == sorted([("fail-503", "error"), ("fail-429", "rate_limited"), ("hang-forever", "timeout"),
                             *[("fail-500", "error")] * 3])
    timeout_row = next(r for r in rows if r["status"] == "timeout")
    assert timeout_row["latency_ms"] >= TIMEOUT_SECONDS * 1000 * 0.9


def test_client_leaving_mid_stream_still_records_what_was_generated(gw, gateway_url, upstream) -> None:
    key = gw.key()
    before = upstream.app.finished_streams
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{gateway_url}/openai/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
            json={"model": "drip-300-gpt-4o-mini", "stream": True, "max_tokens": 77, "messages": one_prompt()}) as r:
        first = next(r.iter_bytes())
        assert b"chat.completion.chunk" in first
    # the client is gone after its first chunk; the gateway reads on to the provider's usage
    rows = gw.usage(key, 1, timeout=15)
    assert len(rows) == 1
    assert (rows[0]["status"], rows[0]["output_tokens"]) == ("cancelled", 77)
    assert upstream.app.finished_streams == before + 1


def test_provider_keys_never_reach_the_client(gw, gateway_url, openai_client) -> None:
    key = gw.key()
    seen = []
    for path, body in (("/openai/v1/chat/completions", {"model": "gpt-4o-mini", "messages": one_prompt()}),
                       ("/openai/v1/chat/completions", {"model": "fail-401", "messages": one_prompt()}),
                       ("/openai/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}),
                       ("/anthropic/v1/messages", {"model": "fail-500", "max_tokens": 3, "messages": one_prompt()})):
        response = httpx.post(gateway_url + path, headers={"authorization": f"Bearer {key}"}, json=body)
        seen.append(response.text + str(response.headers))
    seen.append(httpx.get(f"{gateway_url}/openai/v1/models", headers={"authorization": f"Bearer {key}"}).text)
    assert not any(secret in text for text in seen for secret in (PROVIDER_KEY, ANTHROPIC_KEY, "SECRET"))


def test_providers_cli_add_list_remove(gw, monkeypatch) -> None:
    org = str(gw.org_id)
    admin_key = f"sk-admin-{uuid.uuid4().hex}"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(admin_key + "\n"))
    added = runner.invoke(cli, ["providers", "add", "--org", org, "--provider", "openai", "--name", "reports",
                                "--api-key", "sk-inference-key-1234", "--admin-key", "-",
                                "--base-url", "https://proxy.example.com/v1", "--json"], input=admin_key + "\n")
    assert added.exit_code == 0, added.output
    assert admin_key not in added.output and "sk-inference-key-1234" not in added.output
    listed = runner.invoke(cli, ["providers", "list", "--org", org, "--json"])
    rows = __import__("json").loads(listed.output)
    reports = next(r for r in rows if r["name"] == "reports")
    assert (reports["base_url"], reports["key_hint"], reports["admin_key_hint"]) == (
        "https://proxy.example.com/v1", "1234", admin_key[-4:])
    from tokentra_core.db import connect
    from tokentra_core.secrets import read_admin_key, read_provider_secret

    with connect(gw.dsn) as conn:
        assert read_admin_key(conn, reports["id"]) == admin_key
        assert read_provider_secret(conn, reports["id"]) == "sk-inference-key-1234"
        sealed = conn.execute("select ciphertext from private.provider_admin_keys where connection_id = %s",
                              (reports["id"],)).fetchone()["ciphertext"]
        assert admin_key.encode() not in bytes(sealed)
    bad = runner.invoke(cli, ["providers", "add", "--org", org, "--provider", "openai", "--api-key", "sk-x-12345678",
                              "--base-url", "https://user:pw@host/v1"])
    assert bad.exit_code == 1 and "--base-url" in bad.output
    duplicate = runner.invoke(cli, ["providers", "add", "--org", org, "--provider", "openai", "--name", "reports",
                                    "--api-key", "sk-other-key-5678"])
    assert duplicate.exit_code == 1 and "--replace" in duplicate.output
    removed = runner.invoke(cli, ["providers", "remove", reports["id"]])
    assert removed.exit_code == 0
    assert gw.sql("select 1 from private.provider_admin_keys where connection_id = %s", reports["id"]) == []


def _raw_post(gateway_url: str, key: str, head_extra: str) -> socket.socket:
    """A socket with a chat-completions request head sent (the body is the caller's)."""
    url = httpx.URL(gateway_url)
    sock = socket.create_connection((url.host, url.port), timeout=10)
    sock.sendall((f"POST {url.path}/openai/v1/chat/completions HTTP/1.1\r\nHost: {url.host}\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n{head_extra}\r\n").encode())
    return sock


def _answer(sock: socket.socket) -> bytes:
    data = b""
    try:
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_an_oversized_body_is_refused_without_being_read_whole(gw, gateway_url, framing: str) -> None:
    """A body over the gateway's limit gets the provider-style 413: at once when its Content-Length says
    so (no byte of it sent), and as soon as a chunked body passes the limit, long before it would end."""
    limit = get_settings().gateway_max_body_bytes
    key = gw.key()
    if framing == "declared":
        sock = _raw_post(gateway_url, key, f"Content-Length: {limit + random.randint(1, 10**6)}\r\n")
        answer = _answer(sock)
    else:
        sock = _raw_post(gateway_url, key, "Transfer-Encoding: chunked\r\n")
        chunk = b"x" * random.randint(100_000, 1_000_000)
        sent, answer = 0, b""
        sock.settimeout(0.001)
        try:
            while sent < 4 * limit and not answer:
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except TimeoutError:
                    pass  # the server stopped reading: its answer is on the way
                sent += len(chunk)
                try:
                    answer = sock.recv(65536)
                except TimeoutError:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        answer += _answer(sock)
        assert sent < 2 * limit, f"the gateway read {sent} bytes of a body limited to {limit}"
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_too_large" and str(limit) in body["error"]["message"]
    assert gw.usage(key, expect=0, timeout=0.5) == []
