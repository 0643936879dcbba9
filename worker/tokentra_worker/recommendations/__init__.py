"""The `recommendations` job: every detector over each chunk of organizations, then the lifecycle.

Detectors are SQL functions registered in private.detectors (one per category, each run once for a chunk
of organizations and returning private.recommendation_candidate rows, thresholds in
private.detector_parameters). This module only orchestrates and writes.

A detector that fires again updates its open recommendation (same fingerprint) instead of adding one;
an open recommendation whose pattern is gone expires; a dismissed one is never reopened; an applied one
gets its realised savings measured (private.measure_realised_savings: from the calls its routing rule
routed, else against the baseline frozen when it was applied).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from tokentra_worker._per_org import for_each_active_org, log_org_failure
from tokentra_worker.recommendations._common import Rec, priority

__all__ = ["Found", "detect_chunk", "run_org", "run_recommendations", "sql_detectors"]

log = logging.getLogger("tokentra.worker.recommendations")

_UPSERT = """
insert into public.recommendations as r (org_id, category, scope_type, scope_value, fingerprint, title,
  description,
  current_monthly_cost, projected_monthly_cost, estimated_monthly_savings, savings_method, confidence,
    priority,
  risk, effort, implementation_steps, evidence, suggested_rule, last_seen_at)
values (%(org)s, %(category)s, %(scope_type)s, %(scope_value)s, %(fingerprint)s, %(title)s, %(description)s,
        %(current)s, %(projected)s, %(savings)s, %(method)s, %(confidence)s, %(priority)s, %(risk)s,
          %(effort)s,
        %(steps)s, %(evidence)s, %(rule)s, now())
on conflict (org_id, fingerprint) do update
  set title = excluded.title, description = excluded.description,
      current_monthly_cost = excluded.current_monthly_cost, projected_monthly_cost =
        excluded.projected_monthly_cost,
      estimated_monthly_savings = excluded.estimated_monthly_savings, savings_method =
        excluded.savings_method,
      confidence = excluded.confidence, priority = excluded.priority, evidence = excluded.evidence,
      suggested_rule = excluded.suggested_rule, implementation_steps = excluded.implementation_steps,
      last_seen_at = now(), status = case when r.status = 'expired' then 'open' else r.status end
  where r.status in ('open', 'under_review', 'expired')
returning id
"""

_SQL_DETECTORS = "select category, function_name, enabled from private.detectors order by category"
_WINDOW = "select org_id, days::float8 as days from private.detector_window(%s::uuid[], %s)"


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
    for category, function in sql_detectors(conn).items():
        if function is None:
            continue
        for org, rec in _run_sql_detector(conn, category, function, orgs, now):
            out[org].recs.append(rec)
    return out


def run_org(conn, org: str, now: datetime, found: Found | None = None) -> dict[str, int]:
    found = found or detect_chunk(conn, [str(org)], now)[str(org)]
    recs = found.recs
    seen = []
    for rec in recs:
        row = conn.execute(
            _UPSERT,
            {
                "org": org,
                "category": rec.category,
                "scope_type": rec.scope_type,
                "scope_value": rec.scope_value,
                "fingerprint": rec.fingerprint,
                "title": rec.title,
                "description": rec.description,
                "current": round(rec.current, 4),
                "projected": round(rec.projected, 4),
                "savings": round(rec.savings, 4),
                "method": rec.method,
                "confidence": rec.confidence,
                "priority": priority(rec.savings),
                "risk": rec.risk,
                "effort": rec.effort,
                "steps": Jsonb(rec.steps),
                "evidence": Jsonb(
                    {
                        **rec.evidence,
                        "scope": {rec.scope_type: rec.scope_value},
                        "window_days": round(found.days, 2),
                    }
                ),
                "rule": Jsonb(rec.suggested_rule) if rec.suggested_rule else None,
            },
        ).fetchone()
        if row:
            seen.append(row["id"])
    expired = conn.execute(
        "update public.recommendations set status = 'expired' where org_id = %s and status in "
        "('open', 'under_review') "
        "and not (id = any(%s::uuid[]))",
        (org, seen),
    ).rowcount
    # Measuring costs more than the lookup that shows most organizations have nothing applied.
    if conn.execute("select from public.recommendations where org_id = %s and status = 'applied' limit 1",
                    (org,)).fetchone() is not None:
        conn.execute("select private.measure_realised_savings(%s)", (org,))
    return {"found": len(recs), "written": len(seen), "expired": expired}


def run_recommendations(ctx, now: datetime | None = None, orgs: list[str] | None = None) -> str:
    """The job: every organization with usage in the last 30 days."""
    # The detectors run for a chunk of organizations at once (one statement and plan per detector and
    # chunk, not per organization); each organization's findings are still written and committed on their own.
    chunk: dict[str, Found] = {}

    def prefetch(conn, orgs_: list[str], at: datetime) -> None:
        chunk.clear()
        chunk.update(detect_chunk(conn, orgs_, at))

    def run_found(conn, org: str, at: datetime) -> dict[str, int]:
        return run_org(conn, org, at, chunk.pop(org, None))

    n, totals = for_each_active_org(
        ctx, now or datetime.now(UTC), 30, run_found, "recommendations", orgs, prefetch=prefetch
    )
    return (
        f"{n} organizations: {totals['found']} patterns, {totals['written']} "
        f"recommendations written, "
        f"{totals['expired']} expired, {totals['failed']} organizations failed"
    )
