"""The `recommendations` job: every detector over each chunk of organizations, then the lifecycle.

Detectors are SQL functions registered in private.detectors (one per category, each run once for a chunk
of organizations and returning private.recommendation_candidate rows, thresholds in
private.detector_parameters). This module only orchestrates and writes.

A detector that fires again updates its open recommendation (same fingerprint) instead of adding one;
an open recommendation whose pattern is gone expires; a dismissed one is never reopened; an applied one
gets its realised savings measured (private.measure_realised_savings: from the calls its routing rule
routed, else against the baseline frozen when it was applied). All of it is private.record_recommendations,
one call per chunk of organizations.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from tokentra_core.db import connect
from tokentra_worker._per_org import active_orgs, dsn_of, log_org_failure
from tokentra_worker.recommendations._common import Rec

__all__ = ["Found", "detect_chunk", "record", "run_org", "run_recommendations", "sql_detectors"]

log = logging.getLogger("tokentra.worker.recommendations")

CHUNK = 100  # organizations per detector statement and per write
CONNECTIONS = 2  # chunks run side by side, each on its own connection (the database does the work)

_SQL_DETECTORS = "select category, function_name, enabled from private.detectors order by category"
_WINDOW = "select org_id, days::float8 as days from private.detector_window(%s::uuid[], %s)"
_RECORD = "select * from private.record_recommendations(%s::uuid[], %s, %s)"


@dataclass
class Found:
    """What the detectors found for one organization, and the days of history their window covered."""

    recs: list[Rec] = field(default_factory=list)
    days: float = 1.0


def sql_detectors(conn) -> dict[str, str | None]:
    """Registered categories: the function of each enabled one, None for a disabled one."""
    return {r["category"]: r["function_name"] if r["enabled"] else None
            for r in conn.execute(_SQL_DETECTORS).fetchall()}


def _candidate(row: dict[str, Any]) -> tuple[str, Rec]:
    return str(row["org_id"]), Rec(
        category=row["category"], scope_type=row["scope_type"], scope_value=row["scope_value"], key=row["key"],
        title=row["title"], description=row["description"], current=float(row["current_monthly_cost"]),
        projected=float(row["projected_monthly_cost"]), method=row["savings_method"],
        confidence=float(row["confidence"]), risk=row["risk"], effort=row["effort"],
        steps=list(row["implementation_steps"] or []), evidence=dict(row["evidence"] or {}),
        suggested_rule=row["suggested_rule"],
    )


def _run_sql_detector(conn, category: str, function: str, orgs: list[str],
                      now: datetime) -> list[tuple[str, Rec]]:
    """One detector over a chunk in one statement, under a savepoint; if it fails, once per organization
    (each under its own savepoint), so one bad organization costs the others of the chunk nothing."""
    schema, _, name = function.partition(".")
    query = sql.SQL("select * from {}(%s::uuid[], %s)").format(sql.Identifier(schema, name))
    try:
        with conn.transaction():
            return [_candidate(r) for r in conn.execute(query, (orgs, now)).fetchall()]
    except Exception as exc:
        if len(orgs) == 1:
            log_org_failure("recommendations", orgs[0], exc, detector=category)
            return []
    found: list[tuple[str, Rec]] = []
    for org in orgs:
        try:
            with conn.transaction():
                found += [_candidate(r) for r in conn.execute(query, ([org], now)).fetchall()]
        except Exception as exc:
            log_org_failure("recommendations", org, exc, detector=category)
    return found


def detect_chunk(conn, orgs: list[str], now: datetime) -> dict[str, Found]:
    """Every enabled detector over a chunk of organizations, each in one statement for the whole chunk."""
    orgs = [str(o) for o in orgs]
    # JIT compiles longer than these aggregations run, and their sorts and hash tables over a chunk of
    # organizations want more than the default memory (as in the rollup refresh).
    conn.execute("select set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")
    out = {o: Found() for o in orgs}
    for r in conn.execute(_WINDOW, (orgs, now)).fetchall():
        out[str(r["org_id"])].days = float(r["days"])
    # Most detectors start from the chunk's per-scope sums: computed once here, not once per detector;
    # forgotten afterwards, so nothing later in the transaction reads them stale.
    conn.execute("select private.detector_scopes_remember(%s::uuid[], %s)", (orgs, now))
    for category, function in sql_detectors(conn).items():
        if function is None:
            continue
        for org, rec in _run_sql_detector(conn, category, function, orgs, now):
            out[org].recs.append(rec)
    conn.execute("select private.detector_scopes_forget()")
    return out


def _as_candidate(org: str, rec: Rec) -> dict[str, Any]:
    return {"org_id": org, "category": rec.category, "scope_type": rec.scope_type, "scope_value": rec.scope_value,
            "key": rec.key, "title": rec.title, "description": rec.description,
            "current_monthly_cost": rec.current, "projected_monthly_cost": rec.projected,
            "savings_method": rec.method, "confidence": rec.confidence, "risk": rec.risk, "effort": rec.effort,
            "implementation_steps": rec.steps, "evidence": rec.evidence, "suggested_rule": rec.suggested_rule}


def record(conn, found: dict[str, Found]) -> dict[str, dict[str, int]]:
    """Write the findings of these organizations in one call: upserts, expiry, realised savings."""
    orgs = list(found)
    rows = conn.execute(_RECORD, (
        orgs,
        Jsonb([_as_candidate(org, rec) for org, f in found.items() for rec in f.recs]),
        Jsonb({org: f.days for org, f in found.items()}),
    )).fetchall()
    return {str(r["org_id"]): {"found": r["found"], "written": r["written"], "expired": r["expired"]}
            for r in rows}


def run_org(conn, org: str, now: datetime, found: Found | None = None) -> dict[str, int]:
    """One organization: its detectors (unless already run for its chunk) and its writes."""
    org = str(org)
    found = found or detect_chunk(conn, [org], now)[org]
    return record(conn, {org: found})[org]


def _run_chunk(conn, orgs: list[str], now: datetime, stop: threading.Event | None) -> dict[str, int]:
    """A chunk's detectors and writes, committed together; if the writing fails, each organization is
    written and committed on its own, so a failing one is rolled back, logged and counted alone."""
    totals: dict[str, int] = defaultdict(int)
    found: dict[str, Found] = {}
    try:
        found = detect_chunk(conn, orgs, now)
        for counts in record(conn, found).values():
            for k, v in counts.items():
                totals[k] += v
        conn.commit()
        return totals
    except Exception as exc:
        conn.rollback()
        log.warning("recommendations: a chunk of %d organizations failed, running them one by one: %s: %s",
                    len(orgs), type(exc).__name__, exc)
    totals.clear()
    for org in orgs:
        if stop is not None and stop.is_set():
            break
        try:
            for k, v in run_org(conn, org, now, found.get(org)).items():
                totals[k] += v
            conn.commit()
        except Exception as exc:
            conn.rollback()
            totals["failed"] += 1
            log_org_failure("recommendations", org, exc)
    return totals


def run_recommendations(ctx, now: datetime | None = None, orgs: list[str] | None = None,
                        connections: int = CONNECTIONS) -> str:
    """The job: every organization with usage in the last 30 days, a chunk at a time on each connection."""
    now = now or datetime.now(UTC)
    dsn = dsn_of(ctx)
    stop: threading.Event | None = getattr(ctx, "stop", None)
    if orgs is None:
        with connect(dsn) as conn:
            orgs = active_orgs(conn, now, 30)
    orgs = [str(o) for o in orgs]
    chunks: Iterator[list[str]] = (orgs[i : i + CHUNK] for i in range(0, len(orgs), CHUNK))
    lock = threading.Lock()

    def drain() -> dict[str, int]:
        # Each connection takes the next chunk when done with its own, so a slow chunk holds up nobody.
        totals: dict[str, int] = defaultdict(int)
        with connect(dsn) as conn:
            while stop is None or not stop.is_set():  # SIGTERM: leave the rest for the next run
                with lock:
                    part = next(chunks, None)
                if part is None:
                    break
                for k, v in _run_chunk(conn, part, now, stop).items():
                    totals[k] += v
        return totals

    totals: dict[str, int] = defaultdict(int)
    workers = max(1, min(connections, -(-len(orgs) // CHUNK)))
    if workers == 1:
        parts = [drain()]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="recommendations") as pool:
            parts = [f.result() for f in [pool.submit(drain) for _ in range(workers)]]
    for part_totals in parts:
        for k, v in part_totals.items():
            totals[k] += v
    return (
        f"{len(orgs)} organizations: {totals['found']} patterns, {totals['written']} "
        f"recommendations written, "
        f"{totals['expired']} expired, {totals['failed']} organizations failed"
    )
