"""The operator CLI as a newcomer meets it: listing what exists, a second organization for a user, and a
failure of any kind ending in one line that says what failed, why and what to do."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tokentra_cli.functions_server import free_port


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokentra_cli.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "80", **(env or {})})


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    out = run(*args, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def one_line_error(out: subprocess.CompletedProcess) -> str:
    """The failure's whole output: exit status 1, one `error:` line, no traceback."""
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    return lines[0]


def test_lists_show_what_exists_as_text_and_json(dsn):
    org = json.loads(ok("orgs", "create", f"List Co {uuid.uuid4().hex[:6]}", "--json"))
    emails = [f"{uuid.uuid4().hex[:8]}@example.com" for _ in range(random.randint(1, 3))]
    for email in emails:
        ok("users", "create", email, "--org", org["id"], "--role", random.choice(["admin", "member", "viewer"]))
    key = json.loads(ok("keys", "create", "--org", org["id"], "--json"))
    analyst = json.loads(ok("analysts", "create", "--org", org["id"], "--json"))
    try:
        orgs = json.loads(ok("orgs", "list", "--json"))
        mine = next(o for o in orgs if o["id"] == org["id"])
        assert (mine["members"], mine["active_keys"]) == (len(emails), 1)
        users = json.loads(ok("users", "list", "--org", org["id"], "--json"))
        assert sorted(u["email"] for u in users) == sorted(emails)
        keys = json.loads(ok("keys", "list", "--org", org["id"], "--json"))
        assert [k["prefix"] for k in keys] == [key["prefix"]] and key["key"] not in json.dumps(keys)
        analysts = json.loads(ok("analysts", "list", "--org", org["id"], "--json"))
        assert [a["role"] for a in analysts] == [analyst["role"]] and analyst["password"] not in json.dumps(analysts)
        # text: ids whole even on an 80-column terminal
        text = ok("users", "list", "--org", org["id"])
        assert all(email in text for email in emails) and org["id"] in text
        ok("keys", "revoke", key["id"])
        assert json.loads(ok("keys", "list", "--org", org["id"], "--json")) == []
        assert len(json.loads(ok("keys", "list", "--org", org["id"], "--revoked", "--json"))) == 1
    finally:
        ok("analysts", "drop", analyst["role"])


def test_an_existing_user_joins_a_second_organization(dsn):
    first = json.loads(ok("orgs", "create", "First", "--json"))
    second = json.loads(ok("orgs", "create", "Second", "--json"))
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = json.loads(ok("users", "create", email, "--org", first["id"], "--role", "admin", "--json"))
    again = json.loads(ok("users", "create", email.upper(), "--org", second["id"], "--json"))
    assert again["id"] == user["id"] and again["created"] is False and again["role"] == "member"
    memberships = {(m["org_id"], m["role"]) for m in json.loads(ok("users", "list", "--json"))
                   if m["user_id"] == user["id"]}
    assert memberships == {(first["id"], "admin"), (second["id"], "member")}
    # the same membership twice: one line, and the way out
    line = one_line_error(run("users", "create", email, "--org", second["id"]))
    assert "already a member" in line and second["id"] in line
    line = one_line_error(run("users", "create", email, "--org", str(uuid.uuid4())))
    assert "no organization" in line and "tokentra orgs list" in line


@pytest.mark.parametrize("email", ["x@newcomer.test", "not-an-address", "a@@b.com"])
def test_a_bad_email_is_refused_in_words(dsn, email):
    line = one_line_error(run("users", "create", email))
    assert repr(email) in line and "not an email address" in line and "pydantic" not in line.lower()


@pytest.mark.parametrize("command", [("db", "status"), ("orgs", "list"), ("users", "create", "a@example.com"),
                                     ("keys", "list"), ("worker", "status")])
def test_database_failures_are_one_line_with_the_url_the_reason_and_the_next_step(command):
    with __import__("socket").socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cases = {
        f"postgresql://postgres:hunter2@127.0.0.1:{port}/postgres": (
            f"postgresql://postgres@127.0.0.1:{port}/postgres", "connection refused", "check DATABASE_URL"),
        "garbage-url": ("DATABASE_URL is not a Postgres connection URL", "missing", "postgresql://USER:PASSWORD"),
    }
    # the real server with a wrong password
    real = os.environ["DATABASE_URL"]
    wrong = re.sub(r"://([^:]+):[^@]*@", r"://\1:wrong-password@", real)
    cases[wrong] = ("cannot connect to the database at", "password was refused", "check the password")
    for url, parts in cases.items():
        line = one_line_error(run(*command, env={"DATABASE_URL": url}, timeout=30))
        assert all(p in line for p in parts), (url, line)
        assert "hunter2" not in line and "wrong-password" not in line  # never the password


def test_serve_with_an_unreachable_database_says_why_at_once():
    started = time.monotonic()
    out = run("serve", "--port", str(free_port()),
              env={"DATABASE_URL": "postgresql://postgres:x@127.0.0.1:1/postgres"}, timeout=30)
    line = one_line_error(out)
    assert "connection refused" in line and time.monotonic() - started < 20


def test_serve_prints_its_url_and_a_line_per_request(dsn):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tokentra_cli.cli", "serve", "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        banner = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}/functions/v1" in banner, banner
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/functions/v1/costs?team=s3cret-team", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 401
        line = proc.stderr.readline()
        assert re.search(r"GET /functions/v1/costs 401 \d+\.\d ms$", line.strip()), line
        assert "s3cret" not in line  # the query string is never logged
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_worker_status_keeps_job_names_whole_and_warns_when_no_worker_runs(dsn):
    from tokentra_core.db import connect
    from tokentra_worker.status import read_status

    with connect(dsn) as conn:
        status = read_status(conn)
    out = ok("worker", "status")
    for job in status.jobs:
        assert job.name in out, job.name
    warnings = [line for line in out.splitlines() if line.startswith("no worker is alive")]
    # a fresh test database has no worker: the jobs only a worker runs are named, with the way to start one
    expected = not any(w.alive for w in status.workers) and any(j.runs_in == "worker" for j in status.jobs)
    assert len(warnings) == int(expected), out
    for warning in warnings:
        assert all(job in warning for job in ("alerts", "anomalies", "forecasts", "recommendations"))
        assert "tokentra worker" in warning


@pytest.mark.parametrize("kind", ["teams", "projects"])
def test_teams_and_projects_not_seen_yet_are_created_for_budgets_by_name(dsn, kind):
    from tokentra_core.db import connect

    org = json.loads(ok("orgs", "create", "Scopes", "--json"))
    name = f"{kind[:-1]}-{uuid.uuid4().hex[:6]}"
    with connect(dsn) as conn:  # before: a budget naming it is refused (no usage, no row)
        with pytest.raises(Exception, match="scope_id: no"):
            conn.execute("insert into public.budgets (org_id, name, amount, period, scope_type, scope_id) "
                         "values (%s, 'b', 10, 'monthly', %s, %s)", (org["id"], kind[:-1], name))
    made = json.loads(ok(kind, "create", name, "--org", org["id"], "--json"))
    assert [r["id"] for r in json.loads(ok(kind, "list", "--org", org["id"], "--json"))] == [made["id"]]
    with connect(dsn) as conn:
        scope = conn.execute("insert into public.budgets (org_id, name, amount, period, scope_type, scope_id) "
                             "values (%s, 'b', 10, 'monthly', %s, %s) returning scope_id",
                             (org["id"], kind[:-1], name)).fetchone()["scope_id"]
        conn.rollback()
    assert scope == made["id"]
    line = one_line_error(run(kind, "create", name, "--org", org["id"]))
    assert "already exists" in line and name in line
