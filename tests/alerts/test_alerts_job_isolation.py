"""The alerts job delivers the outbox even when a rule evaluation fails: a member can store a rule whose
condition an evaluator cannot read (straight through SQL), and neither that rule nor an evaluator failing
outright may hold back every organization's queued alerts."""

from __future__ import annotations

import random

from alert_helpers import budget_crossing, create_rule, deliveries, evaluate, new_secret

from tokentra_core.db import connect
from tokentra_worker.alerts import run_alerts
from tokentra_worker.jobs import JobContext


def _queue_budget_alert(alerts_url, org, dsn, receiver) -> str:
    secret = new_secret()
    r = create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/hook"), "secret": secret}])
    assert r.status_code == 201, r.text
    budget_crossing(dsn, org, spent=str(random.randint(6, 9)), thresholds=[50])
    assert evaluate(dsn)["raised"] >= 1  # queued in the outbox
    return secret


def _delivered(dsn, org, receiver, secret) -> None:
    (d,) = deliveries(dsn, org)
    assert d["status"] == "delivered"
    got = receiver.received("/hook")
    assert len(got) == 1 and got[0].signed_by(secret)
    assert got[0].json["data"]["details"]["threshold"] == 50


def test_an_unreadable_rule_is_skipped_and_the_outbox_delivered(alerts_url, org, dsn, receiver, alert_settings, caplog):
    secret = _queue_budget_alert(alerts_url, org, dsn, receiver)
    with connect(dsn, autocommit=True) as conn:
        rule = conn.execute(
            "insert into public.alert_rules (org_id, name, type, condition) "
            "values (%s, 'bad spike', 'spend_spike', jsonb_build_object('min_spend_usd', %s::text)) returning id",
            (org.id, random.choice(["abc", "1,5", "ten"]))).fetchone()["id"]
    summary = run_alerts(JobContext(dsn=dsn, settings=alert_settings, worker="test-isolation"))
    assert f"1 failed: rule {rule}" in summary, summary
    assert f"skipped rule {rule} of organization {org.id}" in caplog.text
    _delivered(dsn, org, receiver, secret)


def test_a_failing_evaluator_does_not_stop_delivery(alerts_url, org, dsn, receiver, alert_settings, caplog):
    secret = _queue_budget_alert(alerts_url, org, dsn, receiver)
    # plant an evaluator that fails outright: its function is gone for the length of the run
    with connect(dsn, autocommit=True) as conn:
        conn.execute("alter function private.evaluate_reconciliation_alerts(timestamptz) rename to planted_away")
    try:
        summary = run_alerts(JobContext(dsn=dsn, settings=alert_settings, worker="test-isolation"))
    finally:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("alter function private.planted_away(timestamptz) rename to evaluate_reconciliation_alerts")
    assert "1 failed: private.evaluate_reconciliation_alerts" in summary, summary
    assert "alert evaluation private.evaluate_reconciliation_alerts failed" in caplog.text
    _delivered(dsn, org, receiver, secret)
