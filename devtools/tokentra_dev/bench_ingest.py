"""`tokentra bench ingest`: the ingest function's throughput beside a raw COPY of the same rows.

Both are measured in the same run on the same database: N events in 1,000-event batches from several
concurrent HTTP clients, then the very rows ingest stored (every column it wrote) COPYed by one client
into a table of the same shape: partitioned by day like usage_records, with its indexes and generated
columns. Prints both rates, their ratio and the batch latency p50/p99 (run with --clients 1 for the
latency of a lone client).

A third figure bounds the first: the Postgres side of ingest alone. The same rows, already typed and
hashed, under fresh request ids for an organization of their own, are COPYed into the staging table and
stored by private.ingest_staged in 1,000-event transactions from as many connections as the server has
workers: claims, pricing and the row inserts with no HTTP, JSON or validation. HTTP ingest cannot go faster
than that on the same machine, so its ratio to COPY is the most the design can reach here.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from rich.console import Console
from rich.progress import Progress

from tokentra_cli import admin
from tokentra_cli.functions_server import start_functions, stop_functions
from tokentra_core.db import connect, one
from tokentra_core.settings import get_settings
from tokentra_dev.traffic import month_of_traffic
from tokentra_functions.ingest import NOBODY, STAGE_COPY, STAGE_TABLE, STAGED_TYPES
from tokentra_functions.ingest_schema import STAGED_COLUMNS

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
        days = one(conn.execute("select min(occurred_at)::date as lo, max(occurred_at)::date as hi "
                                "from public.usage_records where org_id = %s", (org_id,)))
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


def bench_store(org_id: str, connections: int) -> tuple[float, UUID]:
    """Store the rows ingest stored for the organization again, for a new organization and under new
    request ids, through private.ingest_staged alone (see the module's docstring); return the seconds
    taken and the new organization."""
    with connect() as conn:
        org = admin.create_org(conn, "bench-ingest-store")
        key = admin.create_key(conn, org.id, name="bench-store")
        as_staged = ", ".join("0" if c == "idx" else f"{c}::text" if c in ("metadata", "raw_usage") else c
                              for c in STAGED_COLUMNS)
        rows = [list(r.values()) for r in conn.execute(
            f"select {as_staged} from public.usage_records where org_id = %s", (org_id,)).fetchall()]
    request_id = STAGED_COLUMNS.index("request_id")
    for i, row in enumerate(rows):
        row[0], row[request_id] = i % 1000, f"store-only-{i}"
    batches = [rows[i:i + 1000] for i in range(0, len(rows), 1000)]
    ready = threading.Barrier(connections + 1)

    def store(share: list[list[list]]) -> None:
        with connect() as conn:
            conn.execute(STAGE_TABLE)
            conn.execute("select from private.ingest_staged(%s, %s, null)", (NOBODY, NOBODY))  # plans, as on_connect
            conn.commit()
            ready.wait()
            for batch in share:
                conn.execute(STAGE_TABLE)  # as the server does: behind a pooler each transaction may be elsewhere
                with conn.cursor().copy(STAGE_COPY) as cp:
                    cp.set_types(STAGED_TYPES)
                    for row in batch:
                        cp.write_row(row)
                stored = one(conn.execute("select count(*) filter (where outcome = 'accepted') as n "
                                          "from private.ingest_staged(%s, %s, null)", (org.id, key.id)))["n"]
                if stored != len(batch):
                    raise RuntimeError(f"the store-only pass stored {stored} of {len(batch)} events")
                conn.commit()

    with ThreadPoolExecutor(connections) as pool:
        done = [pool.submit(store, batches[k::connections]) for k in range(connections)]
        ready.wait()
        t0 = time.perf_counter()
        for f in done:
            f.result()
        return time.perf_counter() - t0, org.id


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
    console.print(f"storing the same {n:,} rows through the Postgres side alone ({workers} connections)...")
    store_s, _ = bench_store(str(org.id), workers)
    result = {
        "events": n, "clients": clients, "server_workers": workers,
        "http_events_per_s": round(n / wall), "copy_events_per_s": round(n / copy_s),
        "ratio_http_to_copy": round((n / wall) / (n / copy_s), 3),
        "postgres_side_events_per_s": round(n / store_s),
        "ratio_postgres_side_to_copy": round(copy_s / store_s, 3),
        "batch_p50_ms": round(1000 * statistics.median(latencies), 1),
        "batch_p99_ms": round(1000 * _percentile(latencies, 99), 1),
    }
    console.print_json(data=result)
    return result
