"""The admin CLI, run as operators run it: a real `tokentra` process against the real database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid

from tokentra_core.db import connect


def tokentra(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", *args], capture_output=True, text=True,
                         timeout=60, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_org_user_and_key_lifecycle(dsn):
    org = json.loads(tokentra("orgs", "create", "Cli Co", "--json"))
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = json.loads(tokentra("users", "create", email, "--org", org["id"], "--role", "admin", "--json"))
    key = json.loads(tokentra("keys", "create", "--org", org["id"], "--test", "--json"))
    assert key["key"].startswith("tt_test_") and key["prefix"] == key["key"][:12]
    with connect(dsn) as conn:
        member = conn.execute("select role from public.organization_members where org_id = %s and user_id = %s",
                              (org["id"], user["id"])).fetchone()
        stored = conn.execute("select * from public.api_keys where id = %s", (key["id"],)).fetchone()
    assert member["role"] == "admin"
    # only the hash and the prefix are kept
    assert bytes(stored["key_hash"]) == hashlib.sha256(key["key"].encode()).digest()
    assert key["key"] not in json.dumps({k: str(v) for k, v in stored.items()})
    tokentra("keys", "revoke", key["id"])
    with connect(dsn) as conn:
        assert conn.execute("select * from private.authenticate_api_key(%s)",
                            (hashlib.sha256(key["key"].encode()).digest(),)).fetchone() is None


def test_unknown_role_is_refused_with_the_reason(dsn):
    org = json.loads(tokentra("orgs", "create", "Roles", "--json"))
    out = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", "users", "create", "x@example.com",
                          "--org", org["id"], "--role", "emperor"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "role must be one of" in out.stderr


def test_db_status_says_what_was_chosen_and_why(dsn):
    status = json.loads(tokentra("db", "status", "--json"))
    assert status["server_version"].startswith(("15", "17"))
    assert status["usage_layout"] in ("partman", "hypertable") and status["usage_layout_reason"]
    assert status["periodic_jobs"].startswith(("pg_cron", "worker"))
