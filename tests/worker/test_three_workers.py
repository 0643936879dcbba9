"""Three `tokentra worker` processes on one database, a budget crossing five thresholds, and a rule
sending to a webhook (which fails three times first), Slack and PagerDuty receivers: every alert is
raised once and delivered to each receiver exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from psycopg.types.json import Jsonb
from pydantic import TypeAdapter
from worker_helpers import query, wait_for

from tokentra_cli import admin
from tokentra_core.alerting.channels import SAVE_SQL, Channel, prepare_channels, sealed_rows
from tokentra_core.alerting.webhooks import verify
from tokentra_core.db import connect
from tokentra_core.settings import get_settings
from tokentra_dev.testing.alert_receiver import LocalReceiver

SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtdGhyZWUtd29ya2Vycy10ZXN0"
THRESHOLDS = [25, 50, 75, 90, 100]


def setup_org(dsn: str, receiver: LocalReceiver) -> str:
    settings = get_settings().model_copy(update={"webhook_allowed_networks": "127.0.0.0/8"})
    channels = TypeAdapter(list[Channel]).validate_python(
        [
            {"type": "webhook", "url": receiver.url("/hook"), "secret": SECRET},
            {"type": "slack", "url": receiver.url("/slack")},
            {"type": "pagerduty", "routing_key": "ROUTINGKEY123"},
        ]
    )
    stored, credentials = prepare_channels(channels, [], settings)
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, "three workers").id
        rule = conn.execute(
            "insert into public.alert_rules (org_id, name, type, channels) values (%s, 'budget', "
            "'budget_threshold', %s) returning id",
            (org, Jsonb(stored)),
        ).fetchone()["id"]
        for params in sealed_rows(org, rule, credentials):
            conn.execute(SAVE_SQL, params)
        conn.execute(
            "insert into public.budgets (org_id, name, amount, period, alert_thresholds) "
            "values (%s, 'daily', 10, 'daily', %s)",
            (org, THRESHOLDS),
        )
        conn.execute(
            "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, "
            "priced) values (%s, %s, 'r1', 'openai', 'gpt-4o', %s, true)",
            (org, datetime.now(UTC), Decimal("10.50")),
        )
    return str(org)


def test_three_workers_raise_and_deliver_each_alert_exactly_once(worker_dsn, start_worker):
    with LocalReceiver() as receiver:
        receiver.script("/hook", [500, 500, 500])
        org = setup_org(worker_dsn, receiver)
        workers = [start_worker(TOKENTRA_PAGERDUTY_EVENTS_URL=receiver.url("/pagerduty")) for _ in range(3)]
        wait_for(
            lambda: (
                query(
                    worker_dsn,
                    "select count(*) filter (where status = 'delivered') as n from private.alert_deliveries",
                )[0]["n"]
                == 3 * len(THRESHOLDS)
            ),
            timeout=90,
            what="every delivery",
        )

        events = query(
            worker_dsn,
            "select id, details ->> 'threshold' as t from public.alert_events where org_id = %s",
            (org,),
        )
        assert sorted(int(e["t"]) for e in events) == THRESHOLDS  # one event per crossing, from three workers

        hooks = receiver.received("/hook")
        ok = Counter(r.headers["webhook-id"] for r in hooks if r.status == 200)
        assert len(ok) == len(THRESHOLDS) and set(ok.values()) == {1}
        assert [r.status for r in hooks].count(500) == 3
        assert all(verify(SECRET, r.headers, r.body) for r in hooks)
        event_ids = {str(e["id"]) for e in events}
        assert {r.json["data"]["id"] for r in hooks if r.status == 200} == event_ids
        assert len(receiver.received("/slack")) == len(THRESHOLDS)
        pd = [r.json for r in receiver.received("/pagerduty")]
        assert sorted(p["dedup_key"] for p in pd) == sorted(f"tokentra-{e}" for e in event_ids)

        status = json.loads(
            subprocess.run(
                [sys.executable, "-m", "tokentra_cli.cli", "worker", "status", "--json"],
                capture_output=True,
                text=True,
                timeout=60,
                env={"DATABASE_URL": worker_dsn, "PATH": "/usr/bin:/bin"},
            ).stdout
        )
        assert sum(w["alive"] for w in status["workers"]) == 3
        assert status["alert_outbox"] == {"pending": 0, "sending": 0, "delivered_24h": 15, "failed": 0}
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(30) for proc in workers] == [0, 0, 0]
    # Each slot of each job ran once across the three workers.
    dup = query(
        worker_dsn,
        "select job, scheduled_for from private.job_runs where scheduled_for is not null "
        "group by 1, 2 having count(*) > 1",
    )
    assert dup == []
