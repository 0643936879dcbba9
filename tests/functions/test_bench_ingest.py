"""The ingest bench's Postgres-side figure measures the same work ingest does: the rows HTTP ingest stored,
stored again through private.ingest_staged alone, come out the same rows at the same prices."""

from __future__ import annotations

import json
import random

import httpx

from tokentra_core.db import connect
from tokentra_dev.bench_ingest import _events, bench_store


def test_the_postgres_side_pass_stores_every_row_again_at_the_same_price(functions_url: str, tenant, dsn: str) -> None:
    rng = random.Random()
    n = rng.randint(1_100, 2_600)  # more than one 1,000-event transaction, the last one partial
    events = _events(n)
    for i in range(0, n, 1000):
        r = httpx.post(f"{functions_url}/ingest", content=json.dumps({"events": events[i:i + 1000]}).encode(),
                       headers={"Authorization": f"Bearer {tenant.key}", "content-type": "application/json"},
                       timeout=60)
        assert r.status_code == 200 and r.json()["accepted"] == len(events[i:i + 1000]), r.text[:300]

    seconds, org = bench_store(tenant.org_id, connections=rng.randint(1, 3))

    assert seconds > 0
    shape = ("select provider, model, count(*) as calls, count(*) filter (where priced) as priced, "
             "sum(cost_usd) as cost, sum(input_tokens + output_tokens) as tokens, "
             "count(distinct request_id) as ids from public.usage_records where org_id = %s "
             "group by provider, model order by provider, model")
    with connect(dsn) as conn:
        original = conn.execute(shape, (tenant.org_id,)).fetchall()
        again = conn.execute(shape, (org,)).fetchall()
    assert sum(row["calls"] for row in original) == n
    assert again == original
