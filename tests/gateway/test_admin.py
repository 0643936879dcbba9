"""Virtual keys for admins, over HTTP (user JWT, the database decides who may) and by the CLI: created with
their policy and printed once, listed without secrets, rotated, revoked; a created key works at once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from gateway_helpers import one_prompt
from typer.testing import CliRunner

from org_fixtures import make_org
from secret_registry import SECRETS_SEEN
from tokentra_cli.cli import app as cli
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_dev.testing.gateway_upstream import PROVIDER_KEY

runner = CliRunner()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """Generous timeouts: a reservation waits for its budget's lock, and this machine is shared."""
    with httpx.Client(timeout=60) as client:
        yield client


def test_virtual_keys_over_http_by_role(dsn, gateway_url, upstream, http) -> None:
    org = make_org(dsn)
    with connect(dsn, autocommit=True) as conn:
        store_provider_connection(conn, uuid.UUID(org.id), "openai", PROVIDER_KEY, base_url=upstream.url + "/v1")
    base = gateway_url.removesuffix("/gateway")
    body = {"org_id": org.id, "name": "agents", "team": "search", "budget": "12.50", "period": "weekly",
            "rpm": 100, "models": ["gpt-4o-mini"], "expires_at": "2099-01-01T00:00:00Z"}
    # members may not create keys; admins may
    assert http.post(f"{base}/virtual-keys", json=body, headers=org.auth("member")).status_code == 403
    created = http.post(f"{base}/virtual-keys", json=body, headers=org.auth("admin"))
    assert created.status_code == 201, created.text
    key = created.json()
    SECRETS_SEEN.append(key["key"])
    assert key["key"].startswith("tt_vk_") and key["budget_id"]
    # bad input names the field
    bad = http.post(f"{base}/virtual-keys", json={**body, "period": "hourly"}, headers=org.auth("admin"))
    assert bad.status_code == 422 and "period" in bad.json()["message"]
    # A limit past the column's integer range is refused by name, not a 500 from the insert.
    bad = http.post(f"{base}/virtual-keys", json={**body, "tpm": 9_999_999_999}, headers=org.auth("admin"))
    assert bad.status_code == 422 and "tpm" in bad.json()["message"]
    # the key works through the gateway at once
    call = http.post(f"{gateway_url}/openai/v1/chat/completions", headers={"authorization": f"Bearer {key['key']}"},
                      json={"model": "gpt-4o-mini", "messages": one_prompt()})
    assert call.status_code == 200, call.text
    # listed with its policy, never its secret; outsiders see nothing
    listed = http.get(f"{base}/virtual-keys", params={"org_id": org.id}, headers=org.auth("admin")).json()["data"]
    mine = next(k for k in listed if k["id"] == key["id"])
    assert (mine["team"], mine["budget_amount"], mine["budget_period"], mine["rpm"], mine["allowed_models"]) == (
        "search", "12.50", "weekly", 100, ["gpt-4o-mini"])
    assert key["key"] not in json.dumps(listed)
    assert http.get(f"{base}/virtual-keys", params={"org_id": org.id},
                     headers=org.auth("outsider")).json()["data"] == []
    # rotate: a new secret for the same id; the old one stops working
    rotated = http.post(f"{base}/virtual-keys/{key['id']}/rotate", json={"org_id": org.id}, headers=org.auth("admin"))
    assert rotated.status_code == 200 and rotated.json()["id"] == key["id"]
    SECRETS_SEEN.append(rotated.json()["key"])
    old = http.post(f"{gateway_url}/openai/v1/chat/completions", headers={"authorization": f"Bearer {key['key']}"},
                     json={"model": "gpt-4o-mini", "messages": one_prompt()})
    assert old.status_code == 401
    # revoke: refused at once; a second revoke is a 404
    revoked = http.post(f"{base}/virtual-keys/{key['id']}/revoke", json={"org_id": org.id}, headers=org.auth("admin"))
    assert revoked.status_code == 204
    again = http.post(f"{base}/virtual-keys/{key['id']}/revoke", json={"org_id": org.id}, headers=org.auth("admin"))
    assert again.status_code == 404
    gone = http.post(f"{gateway_url}/openai/v1/chat/completions",
                      headers={"authorization": f"Bearer {rotated.json()['key']}"},
                      json={"model": "gpt-4o-mini", "messages": one_prompt()})
    assert gone.status_code == 401


def test_virtual_keys_cli_create_prints_the_key_once(gw) -> None:
    created = runner.invoke(cli, ["virtual-keys", "create", "--org", str(gw.org_id), "--team", "ops",
                                  "--end-user", "u-1", "--budget", "5", "--period", "daily", "--soft-limit",
                                  "--rpm", "60", "--tpm", "10000", "--models", "gpt-4o-mini,gpt-4o",
                                  "--expires", "30d", "--json"])
    assert created.exit_code == 0, created.output
    out = json.loads(created.output)
    SECRETS_SEEN.append(out["key"])
    assert out["key"].startswith("tt_vk_") and out["expires_at"]
    listed = runner.invoke(cli, ["virtual-keys", "list", "--org", str(gw.org_id), "--json"])
    row = next(r for r in json.loads(listed.output) if r["id"] == out["id"])
    assert out["key"] not in listed.output
    assert (row["team"], row["end_user_id"], row["hard_limit"], row["rpm"], row["tpm"], row["allowed_models"]) == (
        "ops", "u-1", False, 60, 10000, ["gpt-4o-mini", "gpt-4o"])
    bad = runner.invoke(cli, ["virtual-keys", "create", "--org", str(gw.org_id), "--expires", "tomorrow"])
    assert bad.exit_code == 1 and "--expires" in bad.output
    bad_period = runner.invoke(cli, ["virtual-keys", "create", "--org", str(gw.org_id), "--period", "hourly"])
    assert bad_period.exit_code == 1 and "period" in bad_period.output
