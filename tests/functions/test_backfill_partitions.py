"""Every timestamp ingest accepts has a home: events 36, 200 and 399 days old (and at random ages in
between) land in day partitions, never the default one, and partition maintenance runs after them."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tokentra_core.db import connect


def test_backfilled_events_land_in_day_partitions_and_maintenance_survives(functions_url, dsn, tenant):
    rng = random.Random(7)
    now = datetime.now(UTC)
    ages = [timedelta(days=36), timedelta(days=200), timedelta(days=399, hours=23)]
    ages += [timedelta(seconds=rng.randrange(0, 399 * 86400)) for _ in range(7)]
    events = [{"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o-mini", "input_tokens": 10,
               "output_tokens": 2, "timestamp": (now - age).isoformat()} for age in ages]
    r = httpx.post(f"{functions_url}/ingest", json={"events": events},
                   headers={"Authorization": f"Bearer {tenant.key}"}, timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text
    with connect(dsn) as conn:
        where = conn.execute("select tableoid::regclass::text as part, count(*) as n from public.usage_records "
                             "where org_id = %s group by 1", (tenant.org_id,)).fetchall()
    assert sum(w["n"] for w in where) == len(events)
    assert all(w["part"] != "usage_records_default" for w in where), where
    done = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", "worker", "--once", "tokentra-usage-maintenance"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with connect(dsn) as conn:
        message = conn.execute("select private.usage_maintenance() as m").fetchone()["m"]
        conn.commit()
    assert message.startswith("usage maintenance done")
