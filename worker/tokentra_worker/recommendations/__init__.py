"""The `recommendations` job: every detector over each organization's aggregates, then the lifecycle.

A detector that fires again updates its open recommendation (same fingerprint) instead of adding one;
an open recommendation whose pattern is gone expires; a dismissed one is never reopened; an applied one
gets its realised savings measured against the baseline frozen when it was applied.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from psycopg.types.json import Jsonb

from tokentra_core.db import Conn
from tokentra_worker._per_org import for_each_active_org, log_org_failure
from tokentra_worker.recommendations._common import Rec, priority
from tokentra_worker.recommendations._data import OrgData, load, load_many
from tokentra_worker.recommendations.attribution import business_outcome_attribution
from tokentra_worker.recommendations.caching import request_deduplication, semantic_caching
from tokentra_worker.recommendations.hosting import provider_arbitrage, rate_limit_optimization
from tokentra_worker.recommendations.output_format import output_format_optimization
from tokentra_worker.recommendations.prefix_cache import partial_response_caching
from tokentra_worker.recommendations.quality import quality_cost_pareto
from tokentra_worker.recommendations.reliability import (
    abandoned_request_detection,
    error_reduction,
    retry_storm_detection,
    timeout_cost_analysis,
)
from tokentra_worker.recommendations.routing import (
    embedding_optimization,
    model_version_optimization,
    task_aware_routing,
)
from tokentra_worker.recommendations.scheduling import time_based_optimization
from tokentra_worker.recommendations.tokens import context_window_efficiency, io_ratio_optimization, prompt_compression

__all__ = ["DETECTORS", "detect", "run_org", "run_recommendations"]

log = logging.getLogger("tokentra.worker.recommendations")

DETECTORS: dict[str, Callable[[Conn, OrgData], list[Rec]]] = {
    "task_aware_routing": task_aware_routing,
    "model_version_optimization": model_version_optimization,
    "request_deduplication": request_deduplication,
    "semantic_caching": semantic_caching,
    "retry_storm_detection": retry_storm_detection,
    "timeout_cost_analysis": timeout_cost_analysis,
    "error_reduction": error_reduction,
    "time_based_optimization": time_based_optimization,
    "abandoned_request_detection": abandoned_request_detection,
    "embedding_optimization": embedding_optimization,
    "business_outcome_attribution": business_outcome_attribution,
    "context_window_efficiency": context_window_efficiency,
    "io_ratio_optimization": io_ratio_optimization,
    "prompt_compression": prompt_compression,
    "provider_arbitrage": provider_arbitrage,
    "rate_limit_optimization": rate_limit_optimization,
    "quality_cost_pareto": quality_cost_pareto,
    "output_format_optimization": output_format_optimization,
    "partial_response_caching": partial_response_caching,
}

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

# Realised savings of applied recommendations: the feature's cost per request since the apply, against
# the baseline's, times the requests since, scaled to a month. Read from the rollups.
_REALISED = """
update public.recommendations r
   set realised_monthly_savings = round(((r.baseline ->> 'cost_per_request')::numeric * m.requests - m.cost)
                                        * 30 * 86400 / greatest(extract(epoch from now() - r.applied_at),
                                          3600), 4)
  from (select x.id, coalesce(sum(u.requests), 0) as requests, coalesce(sum(u.cost_usd), 0) as cost
          from public.recommendations x
          left join analytics.usage_hourly u
            on u.org_id = x.org_id and u.bucket >= date_trunc('hour', x.applied_at)
           and coalesce(u.feature, '(none)') = x.scope_value
         where x.org_id = %(org)s and x.status = 'applied' and x.baseline ? 'cost_per_request'
         group by x.id) m
 where r.id = m.id
"""


def detect(conn, data: OrgData) -> list[Rec]:
    # Detectors only read: run them all under one savepoint (two round trips, not two per detector), and
    # only if one fails rerun each under its own, so the failing one costs no other its findings.
    try:
        with conn.transaction():
            return [rec for detector in DETECTORS.values() for rec in detector(conn, data)]
    except Exception:  # noqa: S110 - each detector is rerun below under its own savepoint and logged there
        pass
    found: list[Rec] = []
    for name, detector in DETECTORS.items():
        try:
            with conn.transaction():
                found += detector(conn, data)
        except Exception as exc:
            log_org_failure("recommendations", str(data.org), exc, detector=name)
    return found


def run_org(conn, org: str, now: datetime, data: OrgData | None = None) -> dict[str, int]:
    data = data or load(conn, org, now)
    recs = detect(conn, data)
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
                        "window_days": round(data.days, 2),
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
    # Planning _REALISED costs more than the lookup that shows most organizations have nothing applied.
    if conn.execute("select from public.recommendations where org_id = %s and status = 'applied' limit 1",
                    (org,)).fetchone() is not None:
        conn.execute(_REALISED, {"org": org})
    return {"found": len(recs), "written": len(seen), "expired": expired}


def run_recommendations(ctx, now: datetime | None = None, orgs: list[str] | None = None) -> str:
    """The job: every organization with usage in the last 30 days."""
    # The aggregates are read for a chunk of organizations at once (one query plan per chunk, not per
    # organization); each organization's detections are still written and committed on their own.
    loaded: dict[str, OrgData] = {}

    def prefetch(conn, chunk: list[str], at: datetime) -> None:
        loaded.clear()
        loaded.update(load_many(conn, chunk, at))

    def run_loaded(conn, org: str, at: datetime) -> dict[str, int]:
        return run_org(conn, org, at, loaded.pop(org, None))

    n, totals = for_each_active_org(
        ctx, now or datetime.now(UTC), 30, run_loaded, "recommendations", orgs, prefetch=prefetch
    )
    return (
        f"{n} organizations: {totals['found']} patterns, {totals['written']} "
        f"recommendations written, "
        f"{totals['expired']} expired, {totals['failed']} organizations failed"
    )
