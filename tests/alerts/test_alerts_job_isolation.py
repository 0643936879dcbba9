"""The alerts job delivers the outbox even when a rule evaluation fails: a member can store a rule whose
condition an evaluator cannot read (straight through SQL), and that must not hold back every
organization's queued alerts."""

from __future__ import annotations

import random

import psycopg
import pytest
from alert_helpers import budget_crossing, create_rule, deliveries, evaluate, new_secret

from tokentra_core.db import connect
from tokentra_worker.alerts import run_alerts
from tokentra_worker.jobs import JobContext


def test_a_failing_evaluator_does_not_stop_delivery(alerts_url, org, dsn, receiver, alert_settings, caplog):
    secret = new_secret()
    r = create_rule(alerts_url, org, [{"type": "webhook", "url": receiver.url("/hook"), "secret": secret}])
    assert r.status_code == 201, r.text
    budget_crossing(dsn, org, spent=str(random.randint(6, 9)), thresholds=[50])
    assert evaluate(dsn)["raised"] >= 1  # queued in the outbox
    # a rule the metric evaluator cannot read, written as the API would never let it be
    bad = random.choice(["abc", "1,5", "ten"])
    with connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.alert_rules (org_id, name, type, condition) "
                     "values (%s, 'bad spike', 'spend_spike', jsonb_build_object('min_spend_usd', %s::text))",
                     (org.id, bad))
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("select private.evaluate_alert_rules()")  # the evaluator does fail on it
    summary = run_alerts(JobContext(dsn=dsn, settings=alert_settings, worker="test-isolation"))
    assert "1 failed: private.evaluate_alert_rules" in summary, summary
    assert "alert evaluation private.evaluate_alert_rules failed" in caplog.text
    (d,) = deliveries(dsn, org)
    assert d["status"] == "delivered"
    got = receiver.received("/hook")
    assert len(got) == 1 and got[0].signed_by(secret)
    assert got[0].json["data"]["details"]["threshold"] == 50
