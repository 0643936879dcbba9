"""Alert delivery to local receivers that speak like the real services: Standard Webhooks signatures,
Slack, PagerDuty Events API v2, email over SMTP; retries with backoff, failures kept, 410, redirects."""

from __future__ import annotations

import httpx
from alert_helpers import budget_crossing, create_rule, deliver, deliveries, evaluate, events, new_secret

from tokentra_core.db import connect


def test_a_receiver_failing_three_times_then_succeeding_gets_the_alert_exactly_once(
    alerts_url, org, dsn, receiver, alert_settings
):
    secret = new_secret()
    receiver.script("/hook", [500, 500, 500])
    r = create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/hook"), "secret": secret}])
    assert r.status_code == 201, r.text
    budget_crossing(dsn, org, spent="6", thresholds=[50])
    assert evaluate(dsn)["raised"] >= 1
    deliver(dsn, alert_settings, org)
    got = receiver.received("/hook")
    assert [x.status for x in got] == [500, 500, 500, 200]
    assert len({x.headers["webhook-id"] for x in got}) == 1  # the same webhook-id on every retry
    assert all(x.signed_by(secret) for x in got)
    assert not got[0].signed_by(new_secret())
    body = got[-1].json
    assert body["type"] == "alert.triggered" and body["data"]["details"]["threshold"] == 50
    (d,) = deliveries(dsn, org)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 4, 200)


def test_a_delivery_that_finally_fails_is_kept_shown_and_can_be_retried(
    alerts_url, org, dsn, receiver, alert_settings
):
    receiver.script("/down", [503] * 10)
    rule = create_rule(
        alerts_url, org, [{"type": "webhook", "url": receiver.url("/down"), "secret": new_secret()}]
    )
    budget_crossing(dsn, org, spent="6", thresholds=[50])
    evaluate(dsn)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update private.alert_deliveries set max_attempts = 3 where org_id = %s", (org.id,))
    deliver(dsn, alert_settings, org)
    (d,) = deliveries(dsn, org)
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("failed", 3, 503)
    assert d["last_error"].startswith("HTTP 503")
    shown = httpx.get(f"{alerts_url}/alerts/events?org_id={org.id}", headers=org.auth("admin")).json()["data"]
    assert shown[0]["deliveries"][0]["status"] == "failed" and shown[0]["rule_id"] == rule.json()["data"]["id"]
    assert shown[0]["deliveries"][0]["last_error"].startswith("HTTP 503")
    # the member cannot queue it again; the admin can, and it keeps its webhook-id
    assert (
        httpx.post(f"{alerts_url}/alerts/deliveries/{d['id']}/retry", headers=org.auth("member")).status_code
        == 403
    )
    r = httpx.post(f"{alerts_url}/alerts/deliveries/{d['id']}/retry", headers=org.auth("admin"))
    assert r.json() == {"data": {"queued": True}, "meta": {}}
    receiver.script("/down", [])
    deliver(dsn, alert_settings, org)
    assert deliveries(dsn, org)[0]["status"] == "delivered"
    assert len({x.headers["webhook-id"] for x in receiver.received("/down")}) == 1


def test_410_disables_the_endpoint(alerts_url, org, dsn, receiver, alert_settings):
    receiver.script("/gone", [410])
    rule = create_rule(
        alerts_url,
        org,
        [
            {"type": "webhook", "url": receiver.url("/gone"), "secret": new_secret()},
            {"type": "slack", "url": receiver.url("/slack")},
        ],
    ).json()["data"]
    budget = budget_crossing(dsn, org, spent="6", thresholds=[50, 90])
    evaluate(dsn)
    deliver(dsn, alert_settings, org)
    hook = next(d for d in deliveries(dsn, org) if d["channel_type"] == "webhook")
    assert (hook["status"], hook["attempts"], hook["last_status_code"]) == ("failed", 1, 410)
    channels = httpx.get(f"{alerts_url}/alerts/{rule['id']}", headers=org.auth("admin")).json()["data"]["channels"]
    assert next(c for c in channels if c["type"] == "webhook")["disabled"] is True
    # the next crossing goes to Slack only
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update public.budgets set amount = 6.5 where id = %s", (budget,))
    evaluate(dsn)
    deliver(dsn, alert_settings, org)
    assert len(receiver.received("/gone")) == 1
    assert len(receiver.received("/slack")) == 2


def test_slack_pagerduty_and_email_trigger_and_resolve(alerts_url, org, dsn, receiver, alert_settings, smtp):
    mailbox, _ = smtp
    r = create_rule(
        alerts_url,
        org,
        [
            {"type": "slack", "url": receiver.url("/slack")},
            {"type": "pagerduty", "routing_key": "R0UT1NGKEY0123456789abcdefABCDEF"},
            {"type": "email", "to": ["oncall@example.com"]},
        ],
    )
    assert r.status_code == 201, r.text
    budget_crossing(dsn, org, spent="10.5", thresholds=[100])
    evaluate(dsn)
    stats = deliver(dsn, alert_settings, org)
    assert (stats.delivered, stats.failed) == (3, 0)
    (event,) = events(dsn, org)
    slack = receiver.received("/slack")[0].json
    assert "reached 100%" in slack["text"] and slack["blocks"][0]["type"] == "section"
    pd = receiver.received("/pagerduty")[0].json
    assert (pd["event_action"], pd["routing_key"], pd["dedup_key"]) == (
        "trigger",
        "R0UT1NGKEY0123456789abcdefABCDEF",
        f"tokentra-{event['id']}",
    )
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["summary"] == event["title"]
    (mail,) = mailbox.messages
    assert mail["To"] == "oncall@example.com" and mail["Subject"].startswith("[TokenTRA] critical:")

    resolved = httpx.post(f"{alerts_url}/alerts/events/{event['id']}/resolve", headers=org.auth("admin"))
    assert resolved.status_code == 200 and resolved.json()["data"]["status"] == "resolved"
    deliver(dsn, alert_settings, org)
    pd_resolve = receiver.received("/pagerduty")[1].json
    assert (pd_resolve["event_action"], pd_resolve["dedup_key"]) == ("resolve", f"tokentra-{event['id']}")
    assert receiver.received("/slack")[1].json["text"].startswith("Resolved:")
    assert mailbox.messages[1]["Subject"].startswith("[TokenTRA] resolved:")


def test_redirects_are_not_followed(alerts_url, org, dsn, receiver, alert_settings):
    receiver.script("/moved", [302] * 100, location=receiver.url("/elsewhere"))
    create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/moved"), "secret": new_secret()}])
    budget_crossing(dsn, org, spent="6", thresholds=[50])
    evaluate(dsn)
    deliver(dsn, alert_settings, org, budget=1.0)
    assert receiver.received("/elsewhere") == []
    (d,) = deliveries(dsn, org)
    assert d["last_status_code"] == 302 and "redirect not followed" in d["last_error"]


def test_targets_are_checked_again_at_send_time(alerts_url, org, dsn, receiver, alert_settings):
    """Saved while loopback was allowed; sent under settings that no longer allow it: refused, not sent."""
    create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/hook"), "secret": new_secret()}])
    budget_crossing(dsn, org, spent="6", thresholds=[50])
    evaluate(dsn)
    deliver(dsn, alert_settings.model_copy(update={"webhook_allowed_networks": ""}), org)
    assert receiver.received() == []
    (d,) = deliveries(dsn, org)
    assert (
        d["status"] == "failed" and d["last_error"].startswith("blocked:") and "not public" in d["last_error"]
    )
