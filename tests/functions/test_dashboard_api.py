"""The endpoints the dashboard added, over the real server and database: /me, the admin endpoints under
the role matrix, the local one-time sign-in (and `tokentra users login`), and the server-sent events
transport that follows realtime topics under the same policy as Supabase Realtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from org_fixtures import Org, api, make_org
from secret_registry import SECRETS_SEEN
from tokentra_core.db import connect
from tokentra_core.dev_auth import local_sign_in_refusal
from tokentra_core.settings import Settings

TOKENTRA = str(Path(sys.executable).parent / "tokentra")


def _data(r: httpx.Response):
    body = r.json()
    return body["data"] if isinstance(body, dict) and "data" in body else body


def _email(org: Org, role: str) -> str:
    with connect() as conn:
        return conn.execute(
            "select u.email from auth.users u join public.organization_members m on m.user_id = u.id "
            "where m.org_id = %s and m.role = %s", (org.id, role)).fetchone()["email"]


def test_me_names_each_role_and_its_permissions(dsn, functions_url):
    org = make_org(dsn)
    for role, can, cannot in (("owner", "members.write", None), ("viewer", "usage.read", "budgets.read")):
        me = _data(api(functions_url, "GET", "/me", org.auth(role)))
        [membership] = [o for o in me["organizations"] if o["id"] == org.id]
        assert membership["role"] == role and can in membership["permissions"]
        assert cannot is None or cannot not in membership["permissions"]
    assert _data(api(functions_url, "GET", "/me", org.auth("outsider")))["organizations"] == []
    assert api(functions_url, "GET", "/me", {}).status_code == 401


def test_members_and_roles_follow_the_role_matrix(dsn, functions_url):
    org = make_org(dsn)
    members = _data(api(functions_url, "GET", "/admin/members", org.auth("admin"), params={"org_id": org.id}))
    assert sorted(m["role"] for m in members) == ["admin", "member", "owner", "viewer"]
    viewer = next(m for m in members if m["role"] == "viewer")
    owner = next(m for m in members if m["role"] == "owner")
    for role in ("viewer", "member", "outsider"):
        assert api(functions_url, "GET", "/admin/members", org.auth(role),
                   params={"org_id": org.id}).status_code == 403
    # only owners change roles, and never the last owner away
    body = {"org_id": org.id, "role": "member"}
    assert api(functions_url, "PATCH", f"/admin/members/{viewer['user_id']}", org.auth("admin"),
               json=body).status_code == 403
    r = api(functions_url, "PATCH", f"/admin/members/{viewer['user_id']}", org.auth("owner"), json=body)
    assert r.status_code == 200 and _data(r)["role"] == "member"
    r = api(functions_url, "PATCH", f"/admin/members/{owner['user_id']}", org.auth("owner"),
            json={"org_id": org.id, "role": "admin"})
    assert r.status_code == 422 and r.json()["message"].startswith("role:")
    r = api(functions_url, "PATCH", f"/admin/members/{viewer['user_id']}", org.auth("owner"),
            json={"org_id": org.id, "role": "superuser"})
    assert r.status_code == 422 and "role" in r.json()["message"]
    assert api(functions_url, "DELETE", f"/admin/members/{viewer['user_id']}", org.auth("owner"),
               params={"org_id": org.id}).status_code == 204


def test_api_keys_are_shown_once_and_revoked_at_once(dsn, functions_url):
    org = make_org(dsn)
    r = api(functions_url, "POST", "/admin/api-keys", org.auth("member"), json={"org_id": org.id, "name": "x"})
    assert r.status_code == 403
    r = api(functions_url, "POST", "/admin/api-keys", org.auth("admin"), json={"org_id": org.id, "name": "ci"})
    assert r.status_code == 201, r.text
    created = _data(r)
    SECRETS_SEEN.append(created["key"])
    listed = _data(api(functions_url, "GET", "/admin/api-keys", org.auth("admin"), params={"org_id": org.id}))
    assert {k["prefix"] for k in listed} >= {created["prefix"]} and all("key" not in k for k in listed)
    event = {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 10}
    ingest = {"Authorization": f"Bearer {created['key']}"}
    assert api(functions_url, "POST", "/ingest", ingest, json={"events": [event]}).status_code == 200
    # a member cannot even read keys: the key is not found for them
    assert api(functions_url, "POST", f"/admin/api-keys/{created['id']}/revoke", org.auth("member")).status_code == 404
    r = api(functions_url, "POST", f"/admin/api-keys/{created['id']}/revoke", org.auth("admin"))
    assert r.status_code == 200 and _data(r)["revoked_at"]
    assert api(functions_url, "POST", "/ingest", ingest, json={"events": [event]}).status_code == 401


def test_an_owner_makes_an_analyst_login_that_reads_its_organization(dsn, functions_url):
    org = make_org(dsn)
    assert api(functions_url, "POST", "/admin/analysts", org.auth("admin"), json={"org_id": org.id}).status_code == 403
    r = api(functions_url, "POST", "/admin/analysts", org.auth("owner"), json={"org_id": org.id, "timeout_seconds": 30})
    assert r.status_code == 201, r.text
    made = _data(r)
    SECRETS_SEEN.append(made["connection_string"].split(":")[2].split("@")[0])
    with psycopg.connect(made["connection_string"]) as conn:
        assert conn.execute("select count(*) from analytics.usage_daily").fetchone()[0] == 0
    listed = _data(api(functions_url, "GET", "/admin/analysts", org.auth("admin"), params={"org_id": org.id}))
    assert [a["role"] for a in listed] == [made["role"]] and listed[0]["statement_timeout"] == "00:00:30"
    other = make_org(dsn)
    assert api(functions_url, "DELETE", f"/admin/analysts/{made['role']}", other.auth("owner")).status_code == 404
    assert api(functions_url, "DELETE", f"/admin/analysts/{made['role']}", org.auth("owner")).status_code == 204


def test_users_login_prints_a_link_that_signs_in_once(dsn, functions_url):
    org = make_org(dsn)
    email = _email(org, "member")
    out = subprocess.run([TOKENTRA, "users", "login", email], capture_output=True,
                         text=True, env={**os.environ, "DATABASE_URL": dsn}, check=True).stdout.strip()
    assert out.startswith("http://127.0.0.1:54321/dashboard/#/signin?code=")
    code = out.split("code=")[1]
    r = api(functions_url, "POST", "/auth/dev-login", {}, json={"code": code})
    assert r.status_code == 200, r.text
    token = _data(r)["access_token"]
    me = _data(api(functions_url, "GET", "/me", {"Authorization": f"Bearer {token}"}))
    assert me["email"] == email and [o["role"] for o in me["organizations"]] == ["member"]
    assert api(functions_url, "POST", "/auth/dev-login", {}, json={"code": code}).status_code == 401
    r = api(functions_url, "POST", "/auth/dev-login", {}, json={"code": "short"})
    assert r.status_code == 422 and r.json()["message"].startswith("code:")


def test_local_sign_in_is_refused_on_a_real_project(dsn):
    assert local_sign_in_refusal(Settings(supabase_url="https://abcd.supabase.co")) is not None
    assert local_sign_in_refusal(Settings(environment="production")) is not None
    assert local_sign_in_refusal(Settings(supabase_url="http://127.0.0.1:54321")) is None
    org = make_org(dsn)
    run = subprocess.run([TOKENTRA, "users", "login", _email(org, "owner"), "--token"],
                         capture_output=True, text=True,
                         env={**os.environ, "DATABASE_URL": dsn, "SUPABASE_URL": "https://abcd.supabase.co"})
    assert run.returncode != 0 and "Supabase Auth" in run.stderr + run.stdout and "eyJ" not in run.stdout


def _follow(functions_url: str, token: str, topics: list[str], got: list[dict], ready: threading.Event) -> None:
    with httpx.stream("GET", f"{functions_url}/realtime/sse", params={"topic": topics},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30) as s:
        name = None
        for line in s.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "ready":
                ready.set()
            elif line.startswith("data: ") and name == "message":
                got.append(json.loads(line[6:]))
                return


def test_server_sent_events_follow_topics_under_the_realtime_policy(dsn, functions_url):
    org, other = make_org(dsn), make_org(dsn)
    alerts = f"org:{org.id}:alerts"
    # a viewer may follow usage, not alerts; nobody follows another organization; topics are checked
    assert api(functions_url, "GET", "/realtime/sse", org.auth("viewer"), params={"topic": alerts}).status_code == 403
    assert api(functions_url, "GET", "/realtime/sse", other.auth("owner"), params={"topic": alerts}).status_code == 403
    r = api(functions_url, "GET", "/realtime/sse", org.auth("owner"), params={"topic": "org:x:alerts"})
    assert r.status_code == 422 and r.json()["message"].startswith("topic:")
    got: list[dict] = []
    ready = threading.Event()
    follower = threading.Thread(target=_follow, args=(functions_url, org.tokens["owner"], [alerts], got, ready),
                                daemon=True)
    follower.start()
    assert ready.wait(10)
    with connect(dsn, autocommit=True) as conn:  # another organization's alert first: never delivered here
        for target in (other.id, org.id):
            conn.execute("insert into public.alert_events (org_id, dedup_key, title) values (%s, %s, %s)",
                         (target, uuid.uuid4().hex, f"alert of {target}"))
    t0 = time.monotonic()
    follower.join(10)
    assert got and got[0]["topic"] == alerts and got[0]["event"] == "alert.raised"
    assert got[0]["payload"]["title"] == f"alert of {org.id}" and time.monotonic() - t0 < 5


@pytest.mark.parametrize("path", ["/admin/members", "/admin/api-keys", "/admin/analysts"])
def test_admin_lists_need_an_organization(dsn, functions_url, path):
    org = make_org(dsn)
    r = api(functions_url, "GET", path, org.auth("owner"))
    assert r.status_code == 422 and r.json()["message"].startswith("org_id")
