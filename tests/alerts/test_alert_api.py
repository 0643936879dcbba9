"""/functions/v1/alerts and /functions/v1/alerts/events over real HTTP: rules with channels (credentials
encrypted, never returned), validation with the field and reason, roles, acknowledge and resolve, and
one event per threshold crossing per period however many evaluations race."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from alert_helpers import budget_crossing, create_rule, evaluate, events, new_secret

from tokentra_core.db import connect


def test_rule_crud_keeps_credentials_encrypted_and_never_returns_them(alerts_url, org, dsn, receiver):
    secret, slack_url, routing_key = (
        new_secret(),
        receiver.url("/slack/T000/B000/XXXXsecretpath"),
        "PDKEY" * 6,
    )
    r = create_rule(
        alerts_url,
        org,
        [
            {"type": "webhook", "url": receiver.url("/hook"), "secret": secret},
            {"type": "slack", "url": slack_url},
            {"type": "pagerduty", "routing_key": routing_key},
        ],
    )
    assert r.status_code == 201, r.text
    rule = r.json()["data"]
    listed = httpx.get(f"{alerts_url}/alerts?org_id={org.id}", headers=org.auth("admin")).text
    for text in (r.text, listed):
        assert secret not in text and slack_url not in text and routing_key not in text
    hook, slack, pd = rule["channels"]
    assert hook["has_secret"] and hook["url"] == receiver.url("/hook") and "secret" not in hook
    assert slack["url_hint"].endswith("path") and "url" not in slack
    assert pd["routing_key_hint"] == "…" + routing_key[-4:]
    with connect(dsn) as conn:
        stored = conn.execute(
            "select (select string_agg(channels::text, '') from public.alert_rules where org_id = %(o)s) || "
            "(select string_agg(coalesce(new_row::text, '') || coalesce(old_row::text, ''), '') "
            " from public.audit_logs where org_id = %(o)s) || "
            "(select string_agg(encode(ciphertext, 'escape') || encode(wrapped_key, 'escape'), '') "
            " from private.alert_channel_secrets where org_id = %(o)s) as everything",
            {"o": org.id},
        ).fetchone()
        n = conn.execute(
            "select count(*) as n from private.alert_channel_secrets where rule_id = %s", (rule["id"],)
        ).fetchone()["n"]
    assert n == 3
    for plain in (secret, slack_url, routing_key):
        assert plain not in stored["everything"]

    # updating without the credential keeps it; a new secret replaces it
    patched = httpx.patch(
        f"{alerts_url}/alerts/{rule['id']}",
        headers=org.auth("admin"),
        json={
            "channels": [
                {"id": hook["id"], "type": "webhook", "url": receiver.url("/hook2")},
                {"id": slack["id"], "type": "slack"},
            ],
            "enabled": False,
        },
    )
    assert patched.status_code == 200, patched.text
    assert [c["id"] for c in patched.json()["data"]["channels"]] == [hook["id"], slack["id"]]
    assert patched.json()["data"]["enabled"] is False
    with connect(dsn) as conn:
        left = conn.execute(
            "select channel_id::text from private.alert_channel_secrets where rule_id = %s order by 1",
            (rule["id"],),
        ).fetchall()
    assert sorted(x["channel_id"] for x in left) == sorted([hook["id"], slack["id"]])
    assert httpx.delete(f"{alerts_url}/alerts/{rule['id']}", headers=org.auth("admin")).status_code == 204


def test_users_cannot_read_channel_credentials_even_encrypted(dsn, org, alerts_url, receiver):
    create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/hook"), "secret": new_secret()}])
    with connect(dsn) as conn:
        user = conn.execute(
            "select m.user_id from public.organization_members m where m.org_id = %s and m.role = 'owner'",
            (org.id,),
        ).fetchone()["user_id"]
        conn.execute(
            "select set_config('request.jwt.claims', %s, true), set_config('role', 'authenticated', true)",
            (json.dumps({"sub": str(user), "role": "authenticated"}),),
        )
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("select ciphertext from private.alert_channel_secrets")
        conn.rollback()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "weather"}, "type"),
        ({"channels": [{"type": "carrier-pigeon"}]}, "channels.0"),
        (
            {
                "channels": [
                    {"type": "webhook", "url": "http://10.0.0.1/x", "secret": "whsec_" + "A" * 43 + "="}
                ]
            },
            "channels.0.url",
        ),
        (
            {"channels": [{"type": "webhook", "url": "https://example.com/x", "secret": "not-a-secret"}]},
            "channels.0.webhook.secret",
        ),
        ({"channels": [{"type": "webhook", "url": "http://127.0.0.1:9/x"}]}, "channels.0.secret"),
        ({"channels": [{"type": "email", "to": ["not an address"]}]}, "channels.0.email.to.0"),
        ({"condition": {"min_threshold": 5000}}, "condition.min_threshold"),
        ({"condition": {"colour": "red"}}, "condition.colour"),
        ({"type": "error_rate", "condition": {"threshold_pct": 150}}, "condition.threshold_pct"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_rules_are_refused_with_field_and_reason(alerts_url, org, body, field):
    r = (
        create_rule(alerts_url, org, [], **body)
        if "channels" not in body
        else create_rule(alerts_url, org, body.pop("channels"), **body)
    )
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(f"{field}:"), r.json()


def test_roles_admins_write_rules_members_and_viewers_do_not(alerts_url, org):
    assert create_rule(alerts_url, org, [], role="member").status_code == 403
    assert create_rule(alerts_url, org, [], role="viewer").status_code == 403
    assert create_rule(alerts_url, org, [], role="outsider").status_code == 403
    rule = create_rule(alerts_url, org, []).json()["data"]
    assert httpx.get(f"{alerts_url}/alerts/{rule['id']}", headers=org.auth("outsider")).status_code == 404
    assert httpx.get(f"{alerts_url}/alerts", headers={}).status_code == 401
    # lists come in the one envelope; members and viewers, who may not read alerts, are told so (403)
    listed = httpx.get(f"{alerts_url}/alerts?org_id={org.id}", headers=org.auth("admin")).json()
    assert set(listed) == {"data", "meta"} and [x["id"] for x in listed["data"]] == [rule["id"]]
    events = httpx.get(f"{alerts_url}/alerts/events?org_id={org.id}", headers=org.auth("admin")).json()
    assert events == {"data": [], "meta": {"count": 0, "limit": 100}}
    for role in ("member", "viewer", "outsider"):
        for path in ("/alerts", "/alerts/events", f"/alerts?org_id={org.id}", f"/alerts/events?org_id={org.id}"):
            r = httpx.get(f"{alerts_url}{path}", headers=org.auth(role))
            assert r.status_code == 403 and "alerts.read" in r.json()["message"], (role, path, r.text)


def test_each_threshold_crossing_raises_one_event_however_many_evaluations_race(alerts_url, org, dsn):
    create_rule(alerts_url, org, [])
    create_rule(alerts_url, org, [], name="only the top", condition={"min_threshold": 90})
    budget_crossing(dsn, org, spent="9.5")  # 95% of $10: 50, 75 and 90 crossed
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: evaluate(dsn), range(16)))
    got = events(dsn, org)
    assert sorted((e["details"]["threshold"], e["severity"]) for e in got) == [
        (50, "info"),
        (75, "warning"),
        (90, "warning"),
        (90, "warning"),
    ]
    assert len({e["dedup_key"] for e in got}) == 4


def test_acknowledge_and_resolve(alerts_url, org, dsn):
    create_rule(alerts_url, org, [])
    budget_crossing(dsn, org, spent="6", thresholds=[50])
    evaluate(dsn)
    (event,) = events(dsn, org)
    url = f"{alerts_url}/alerts/events/{event['id']}"
    assert httpx.post(f"{url}/acknowledge", headers=org.auth("member")).status_code in (403, 404)
    ack = httpx.post(f"{url}/acknowledge", headers=org.auth("admin")).json()["data"]
    assert ack["status"] == "acknowledged" and ack["acknowledged_at"]
    done = httpx.post(f"{url}/resolve", headers=org.auth("admin")).json()["data"]
    assert done["status"] == "resolved" and done["resolved_at"]
    again = httpx.post(f"{url}/acknowledge", headers=org.auth("admin"))
    assert again.status_code == 422 and again.json()["field"] == "status"
    listed = httpx.get(
        f"{alerts_url}/alerts/events?org_id={org.id}&status=resolved", headers=org.auth("admin")
    )
    assert [e["id"] for e in listed.json()["data"]] == [str(event["id"])]
    with connect(dsn) as conn:
        row = conn.execute(
            "select acknowledged_by, resolved_by from public.alert_events where id = %s", (event["id"],)
        ).fetchone()
    assert row["acknowledged_by"] and row["resolved_by"]


def test_events_of_a_period_that_ended_are_resolved(alerts_url, org, dsn):
    create_rule(alerts_url, org, [])
    budget_crossing(dsn, org, spent="6", thresholds=[50])
    evaluate(dsn)
    with connect(dsn, autocommit=True) as conn:
        # The day is over (back-dated rather than waited for).
        conn.execute(
            "update public.alert_events set details = jsonb_set(details, '{period_end}', "
            "to_jsonb(now() - interval '1 minute')) where org_id = %s",
            (org.id,),
        )
    evaluate(dsn)
    assert [e["status"] for e in events(dsn, org)] == ["resolved"]


def test_the_functions_log_holds_no_channel_credential(alerts_url, org, receiver, tmp_path_factory):
    secret = new_secret()
    create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/hook"), "secret": secret}])
    logs = list(Path(tmp_path_factory.getbasetemp()).glob("alerts*/server.log"))
    assert logs and all(secret not in p.read_text() for p in logs)
