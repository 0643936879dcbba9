"""`tokentra bench ingest`: the ingest function's throughput beside a raw COPY of the same rows.

Both are measured in the same run on the same database: N events in 1,000-event batches from several
concurrent HTTP clients, then the very rows ingest stored (every column it wrote) COPYed by one client
into a table of the same shape: partitioned by day like usage_records, with its indexes and generated
columns. Prints both rates, their ratio and the batch latency p50/p99 (run with --clients 1 for the
latency of a lone client).
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.progress import Progress

from tokentra_cli import admin
from tokentra_cli.functions_server import start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.settings import get_settings
from tokentra_dev.traffic import month_of_traffic

console = Console()


def _events(n: int) -> list[dict]:
    """n events shaped like the demo's month, stamped within the last hour: steady-state ingestion,
    where events arrive past the rollups' watermark (late backfills are a separate path)."""
    rng = random.Random(n)
    now = datetime.now(UTC)
    out: list[dict] = []
    while len(out) < n:
        out.extend(month_of_traffic(days=30, seed=len(out)))
    for e in out[:n]:
        e["timestamp"] = (now - timedelta(seconds=rng.uniform(0, 3600))).isoformat()
    return out[:n]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench_http(url: str, key: str, batches: list[list[dict]], clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def send(batch: list[dict]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60)
        body = json.dumps({"events": batch}).encode()
        t0 = time.perf_counter()
        r = local.client.post(f"{url}/ingest", content=body, headers={"content-type": "application/json"})
        elapsed = time.perf_counter() - t0
        if r.status_code != 200 or r.json()["accepted"] != len(batch):
            raise RuntimeError(f"ingest refused a batch: {r.status_code} {r.text[:200]}")
        with lock:
            latencies.append(elapsed)
            progress.advance(task)

    with Progress(console=console) as progress:
        task = progress.add_task("HTTP ingest", total=len(batches))
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(send, batches))
        wall = time.perf_counter() - t0
    return wall, latencies


def bench_copy(org_id: str) -> tuple[int, float]:
    """COPY the rows ingest stored for the organization into a same-shaped table (partitioned by day,
    with usage_records' indexes and generated columns); return the rows and the seconds taken."""
    with connect() as conn:
        columns = [r["attname"] for r in conn.execute(
            "select attname from pg_attribute where attrelid = 'public.usage_records'::regclass and attnum > 0 "
            "and not attisdropped and attgenerated = '' and attidentity = '' order by attnum").fetchall()]
        listed = ", ".join(columns)
        # As text, the form a COPY client sends; the server parses each value into its column's type.
        as_text = ", ".join(f"{c}::text" for c in columns)
        rows = [tuple(r.values()) for r in conn.execute(
            f"select {as_text} from public.usage_records where org_id = %s", (org_id,)).fetchall()]
        days = conn.execute("select min(occurred_at)::date as lo, max(occurred_at)::date as hi "
                            "from public.usage_records where org_id = %s", (org_id,)).fetchone()
        conn.execute("drop table if exists private.bench_usage_copy")
        conn.execute("create table private.bench_usage_copy (like public.usage_records including all) "
                     "partition by range (occurred_at)")
        day = days["lo"]
        while day <= days["hi"]:
            conn.execute(f"create table private.bench_usage_copy_{day:%Y%m%d} partition of private.bench_usage_copy "
                         f"for values from ('{day}') to ('{day + timedelta(days=1)}')")
            day += timedelta(days=1)
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor().copy(f"copy private.bench_usage_copy ({listed}) from stdin") as cp:
            for row in rows:
                cp.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("drop table private.bench_usage_copy")
        conn.commit()
    return len(rows), elapsed


def run(n: int = 50_000, clients: int = 4, workers: int = 2) -> dict:
    with connect() as conn:
        org = admin.create_org(conn, "bench-ingest")
        key = admin.create_key(conn, org.id, name="bench")
        conn.execute("update public.api_keys set rate_limit_per_minute = 1000000 where id = %s", (key.id,))
    console.print(f"generating {n:,} events...")
    events = _events(n)
    batches = [events[i:i + 1000] for i in range(0, n, 1000)]
    proc, url = start_functions(get_settings().functions_port + 100, workers=workers)
    try:
        wall, latencies = bench_http(url, key.key, batches, clients)
    finally:
        stop_functions(proc)
    copied, copy_s = bench_copy(str(org.id))
    if copied != n:
        raise RuntimeError(f"ingest stored {copied} rows of {n}")
    result = {
        "events": n, "clients": clients, "server_workers": workers,
        "http_events_per_s": round(n / wall), "copy_events_per_s": round(n / copy_s),
        "ratio_http_to_copy": round((n / wall) / (n / copy_s), 3),
        "batch_p50_ms": round(1000 * statistics.median(latencies), 1),
        "batch_p99_ms": round(1000 * _percentile(latencies, 99), 1),
    }
    console.print_json(data=result)
    return result
