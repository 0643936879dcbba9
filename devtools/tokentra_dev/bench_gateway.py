"""`tokentra bench gateway`: the gateway's added latency over calling the same local provider directly,
measured in the same run.

A local provider (the tests' wire-format server, in a process of its own) answers chat completions; the
functions server (`tokentra serve`, one worker) fronts it with a virtual key that has an rpm limit and a
hard budget, so every gateway call pays admission, the rate limit, the budget reservation, routing and
the usage write. Direct and gateway calls alternate, so both see the same machine. Reported per mode:
p50 and p99 of whole non-streamed calls, and of the time to the first streamed event (TTFT), with one
client and with N concurrent clients (there also calls per second against direct), and the added
latency (gateway minus direct at the same percentile). Whole calls also go through an empty pass-through
(the same server stack and HTTP client, no policy), the floor under the gateway's added latency.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from tokentra_cli import admin
from tokentra_cli.functions_server import free_port, start_functions, stop_functions
from tokentra_core.db import connect, one
from tokentra_core.secrets import store_provider_connection
from tokentra_core.settings import get_settings
from tokentra_dev.testing.gateway_upstream import PROVIDER_KEY
from tokentra_functions._http import SPEC as SERVER_PROTOCOL

console = Console()
WARM_CALLS = 20  # per target and run, before timing


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _start_upstream(module: str = "tokentra_dev.testing.gateway_upstream:app", env: dict[str, str] | None = None,
                    extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", module, *extra,
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             "--no-access-log"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {PROVIDER_KEY}"}, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the local provider did not start")


def _setup(dsn: str, upstream: str) -> tuple[str, uuid.UUID]:
    """A benchmark organization with a connection to the local provider and a virtual key that has an rpm
    limit and a hard budget (both checked on every call, neither reached)."""
    with connect(dsn, autocommit=True) as conn:
        org = admin.create_org(conn, f"bench-gateway-{uuid.uuid4().hex[:8]}")
        store_provider_connection(conn, org.id, "openai", PROVIDER_KEY, base_url=upstream + "/v1")
        row = one(conn.execute("select * from private.new_virtual_key(%s, 'bench', budget_amount => %s, "
                               "budget_period => 'daily', hard_limit => true, rpm => 10000000)",
                               (org.id, Decimal("100000"))))
    return row["key"], org.id


async def _one(client: httpx.AsyncClient, url: str, headers: dict[str, str], stream: bool) -> float:
    """Seconds to the whole answer, or to its first event when streamed."""
    body = {"model": "gpt-4o-mini", "max_tokens": 20, "stream": stream,
            "messages": [{"role": "user", "content": f"What is the capital of France? {uuid.uuid4()}"}]}
    started = time.perf_counter()
    if not stream:
        response = await client.post(url, json=body, headers=headers)
        response.raise_for_status()
        return time.perf_counter() - started
    async with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        first = None
        async for _ in response.aiter_bytes():
            if first is None:
                first = time.perf_counter() - started
        return first if first is not None else time.perf_counter() - started


async def _measure(targets: dict[str, tuple[str, dict[str, str]]], calls: int, clients: int, stream: bool
                   ) -> dict[str, Any]:
    """Alternate direct and gateway calls from `clients` concurrent workers; latencies and rates per target."""
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        for url, headers in targets.values():  # warm connections, caches and plans
            for _ in range(WARM_CALLS):
                await _one(client, url, headers, stream)
        samples: dict[str, list[float]] = {name: [] for name in targets}
        failures: dict[str, int] = dict.fromkeys(targets, 0)
        causes: dict[str, dict[str, int]] = {name: {} for name in targets}
        elapsed: dict[str, float] = dict.fromkeys(targets, 0.0)
        per_worker = max(1, calls // (2 * clients))  # each target runs twice, `clients` workers each time
        for round_index in range(2 * len(targets)):  # alternate targets in blocks, twice each
            name = list(targets)[round_index % len(targets)]
            url, headers = targets[name]

            async def worker(name: str = name, url: str = url, headers: dict[str, str] = headers) -> None:
                for _ in range(per_worker):
                    try:
                        samples[name].append(await _one(client, url, headers, stream))
                    except httpx.HTTPError as exc:
                        failures[name] += 1  # counted and reported, never timed
                        cause = type(exc).__name__
                        if isinstance(exc, httpx.HTTPStatusError):
                            cause += f" {exc.response.status_code} {exc.response.text[:120]}"
                        causes[name][cause] = causes[name].get(cause, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            elapsed[name] += time.perf_counter() - started
        for name, values in samples.items():
            out[name] = {"p50_ms": _percentile(values, 50) * 1000 if values else None,
                         "p99_ms": _percentile(values, 99) * 1000 if values else None,
                         "calls": len(values), "failed": failures[name], "failures": causes[name],
                         "per_second": len(values) / elapsed[name]}
    return out


def run(calls: int = 2000, clients: int = 50) -> dict[str, Any]:
    settings = get_settings()
    upstream_proc, upstream = _start_upstream()
    key, org_id = _setup(settings.dsn, upstream)
    log = open(os.devnull, "w")  # noqa: SIM115 - the server's log lives as long as the server
    functions_proc, functions_url = start_functions(free_port(), env={"DATABASE_URL": settings.dsn}, log=log)
    # The floor: the same server stack and HTTP client forwarding without any policy (whole calls only).
    floor_proc, floor_url = _start_upstream("tokentra_dev.testing.passthrough:app",
                                            {"TOKENTRA_PASSTHROUGH_UPSTREAM": upstream},
                                            ("--http", SERVER_PROTOCOL))
    targets = {
        "direct": (upstream + "/v1/chat/completions", {"authorization": f"Bearer {PROVIDER_KEY}"}),
        "gateway": (functions_url + "/gateway/openai/v1/chat/completions", {"authorization": f"Bearer {key}"}),
    }
    results: dict[str, Any] = {}
    try:
        for label, n_clients, n_calls in (("1 client", 1, calls), (f"{clients} clients", clients, calls * 2)):
            for stream in (False, True):
                console.print(f"[dim]measuring {label}, {'TTFT streamed' if stream else 'non-streamed'}...[/dim]")
                name = f"{label} {'ttft' if stream else 'call'}"
                run_targets = targets if stream else {
                    **targets, "floor": (floor_url + "/v1/chat/completions", targets["direct"][1])}
                results[name] = asyncio.run(_measure(run_targets, n_calls, n_clients, stream))
                console.print_json(json.dumps({name: results[name]}))
    finally:
        stop_functions(functions_proc)  # the server waits for its usage writer before it exits
        floor_proc.terminate()
        floor_proc.wait(10)
        upstream_proc.terminate()
        upstream_proc.wait(10)
        log.close()
    with connect(settings.dsn, autocommit=True) as conn:
        stored = one(conn.execute("select count(*) as n from public.usage_records where org_id = %s",
                                  (org_id,)))["n"]
    answered = sum(r["gateway"]["calls"] + WARM_CALLS for r in results.values())
    _print(results, stored, answered)
    return results


def _print(results: dict[str, Any], stored: int, answered: int) -> None:
    table = Table("run", "direct p50", "gateway p50", "added p50", "direct p99", "gateway p99", "added p99",
                  "gateway/direct calls per s", title="tokentra bench gateway (ms; same local provider, same run)")
    for name, r in results.items():
        d, g = r["direct"], r["gateway"]
        if d["p50_ms"] is None or g["p50_ms"] is None:
            table.add_row(name, *["-"] * 6, f"failed: {g['failed']} / {d['failed']}")
            continue
        table.add_row(name, f"{d['p50_ms']:.2f}", f"{g['p50_ms']:.2f}", f"{g['p50_ms'] - d['p50_ms']:.2f}",
                      f"{d['p99_ms']:.2f}", f"{g['p99_ms']:.2f}", f"{g['p99_ms'] - d['p99_ms']:.2f}",
                      f"{g['per_second']:.0f} / {d['per_second']:.0f}")
    console.print(table)
    for name, r in results.items():
        f, d = r.get("floor"), r["direct"]
        if f and f["p50_ms"] is not None and d["p50_ms"] is not None:
            console.print(f"{name}: empty pass-through (same server stack, no policy) added "
                          f"p50 {f['p50_ms'] - d['p50_ms']:.2f} ms, p99 {f['p99_ms'] - d['p99_ms']:.2f} ms "
                          f"({f['per_second']:.0f} calls/s)")
    one = results.get("1 client call")
    if one:
        added50 = one["gateway"]["p50_ms"] - one["direct"]["p50_ms"]
        added99 = one["gateway"]["p99_ms"] - one["direct"]["p99_ms"]
        console.print(f"one client, non-streamed: added p50 {added50:.2f} ms (target < 1), "
                      f"added p99 {added99:.2f} ms (target < 3)")
    console.print(f"usage rows the gateway stored for the benchmark's calls: {stored} of {answered} calls answered "
                  "(counted after the server stopped)")
    console.print_json(json.dumps(results))
