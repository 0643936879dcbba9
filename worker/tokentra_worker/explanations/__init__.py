"""The `explanations` job: a grounded explanation for every open anomaly and open recommendation that
lacks a current one.

The evidence comes from SQL (public.anomaly_evidence, public.recommendation_evidence); the LLM (tasks
explain.anomaly, explain.recommendation) writes only the prose, checked number by number against it
(grounding.py); templates stand in when it is off, capped, failing or ungrounded (writer.py).

An explanation is current while its evidence is unchanged. When the evidence moves (an ongoing anomaly
grows, a detector re-estimates), a template is rewritten at once (it costs nothing) and an LLM text once
it is older than TOKENTRA_EXPLANATIONS_REFRESH_MINUTES, so a long incident costs one call an hour, not one
per run. A template stored because the LLM was off is replaced as soon as it is on; one stored because of
the AI cap or a failure, after the same interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from tokentra_core.db import connect
from tokentra_core.llm import LLM, llm_status
from tokentra_core.settings import Settings, get_settings
from tokentra_worker._per_org import dsn_of, for_each_active_org
from tokentra_worker.explanations.writer import Written, write

__all__ = ["run_explanations", "run_org"]

log = logging.getLogger("tokentra.worker.explanations")

# subject: (evidence function, table, what makes one more important than another)
_SUBJECTS = {
    "anomaly": ("public.anomaly_evidence", "public.anomalies", "a.money_involved"),
    "recommendation": ("public.recommendation_evidence", "public.recommendations", "a.estimated_monthly_savings"),
}
# Evidence is computed once per subject (materialized), and not at all for an LLM text too young to be
# rewritten whatever its evidence says.
_DUE = """
with s as materialized (
  select a.id, {rank} as rank, x.id is not null as explained, x.source, x.fallback_reason, x.evidence_hash,
         coalesce(extract(epoch from now() - x.updated_at) / 60 >= %(refresh)s, true) as old
  from {table} a
  left join public.explanations x on x.{column} = a.id
  where a.org_id = %(org)s and a.status = 'open'
), e as materialized (
  select s.*, case when s.source = 'llm' and not s.old then null else {function}(s.id) end as evidence from s
)
select e.id, e.evidence, e.explained, e.source, e.fallback_reason, e.old,
       e.evidence_hash is not distinct from md5(e.evidence::text) as same_evidence
from e
where e.evidence is not null
order by e.rank desc nulls last, e.id
"""
_STORE = """
insert into public.explanations as x (org_id, {column}, headline, body, source, fallback_reason, note, provider,
                                      model, llm_calls, input_tokens, output_tokens, cached_tokens, cost_usd,
                                      rejected, evidence)
values (%(org)s, %(id)s, %(headline)s, %(body)s, %(source)s, %(reason)s, %(note)s, %(provider)s, %(model)s,
        %(calls)s, %(input)s, %(output)s, %(cached)s, %(cost)s, %(rejected)s, %(evidence)s)
on conflict ({column}) do update
  set headline = excluded.headline, body = excluded.body, source = excluded.source,
      fallback_reason = excluded.fallback_reason, note = excluded.note, provider = excluded.provider,
      model = excluded.model, llm_calls = excluded.llm_calls, input_tokens = excluded.input_tokens,
      output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens, cost_usd = excluded.cost_usd,
      rejected = excluded.rejected, evidence = excluded.evidence, created_at = now()
"""


def _due(row: dict[str, Any], llm_on: bool) -> bool:
    if not row["explained"]:
        return True
    if not row["same_evidence"]:
        return row["source"] == "template" or row["old"]
    if row["source"] == "template" and llm_on:
        return row["fallback_reason"] == "llm_off" or (row["fallback_reason"] != "ungrounded" and row["old"])
    return False


def _store(conn, subject: str, org: str, subject_id: str, evidence: dict, w: Written) -> None:
    kept = w.model_call
    conn.execute(
        _STORE.format(column=f"{subject}_id"),
        {"org": org, "id": subject_id, "headline": w.prose.headline, "body": w.prose.body, "source": w.source,
         "reason": w.fallback_reason, "note": w.note, "provider": kept.provider if kept else None,
         "model": kept.model if kept else None, "calls": len(w.calls),
         "input": sum(c.input_tokens for c in w.calls), "output": sum(c.output_tokens for c in w.calls),
         "cached": sum(c.cached_tokens for c in w.calls), "cost": round(sum(c.cost_usd for c in w.calls), 6),
         "rejected": Jsonb(w.rejected), "evidence": Jsonb(evidence)},
    )


def _due_subjects(conn, org: str, settings: Settings, llm_on: bool) -> list[tuple[str, dict]]:
    """(subject, row) for every open anomaly and recommendation of org whose explanation is due."""
    due = []
    for subject, (function, table, rank) in _SUBJECTS.items():
        rows = conn.execute(
            _DUE.format(table=table, function=function, column=f"{subject}_id", rank=rank),
            {"org": org, "refresh": settings.explanations_refresh_minutes},
        ).fetchall()
        due += [(subject, row) for row in rows if _due(row, llm_on)]
    conn.commit()  # no transaction held open while the LLM writes
    return due


async def _explain(conn, org: str, due: list[tuple[str, dict]], settings: Settings, dsn: str, budget: list[int],
                   stop) -> Counter:
    done: Counter = Counter()
    llm = LLM(settings, dsn)
    try:
        for subject, row in due:
            if budget[0] <= 0 or (stop is not None and stop.is_set()):
                break
            written = await write(llm, subject, row["evidence"], org)
            _store(conn, subject, org, row["id"], row["evidence"], written)
            conn.commit()
            budget[0] -= 1
            done[written.source] += 1
            done[f"reason:{written.fallback_reason}"] += written.fallback_reason is not None
            done["rejected"] += len(written.rejected)
            done["calls"] += len(written.calls)
            done["cost_microusd"] += round(sum(c.cost_usd for c in written.calls) * 1e6)
    finally:
        await llm.aclose()
    return done


_OPEN_ORGS = """
select org_id from public.anomalies where status = 'open'
union
select org_id from public.recommendations where status = 'open'
"""


def run_explanations(ctx, now: datetime | None = None, orgs: list[str] | None = None,
                     settings: Settings | None = None) -> str:
    """The job: every organization with an open anomaly or recommendation (or the given ones)."""
    settings = settings or getattr(ctx, "settings", None) or get_settings()
    dsn = dsn_of(ctx)
    status = llm_status(settings)
    budget = [settings.explanations_max_per_run]
    stop = getattr(ctx, "stop", None)

    def run_org(conn, org: str, _now: datetime) -> dict[str, int]:
        due = _due_subjects(conn, org, settings, status["enabled"])
        if not due or budget[0] <= 0:
            return {}
        return dict(asyncio.run(_explain(conn, org, due, settings, dsn, budget, stop)))

    if orgs is None:
        with connect(dsn) as conn:
            orgs = [str(r["org_id"]) for r in conn.execute(_OPEN_ORGS).fetchall()]
    n, totals = for_each_active_org(ctx, now or datetime.now(UTC), 30, run_org, "explanations", orgs)
    llm = "LLM on" if status["enabled"] else f"LLM off ({status['reason']})"
    reasons = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(totals.items())
                        if k.startswith("reason:") and v)
    return (f"{n} organizations: {totals['llm'] + totals['template']} explained, {totals['llm']} by the LLM, "
            f"{totals['template']} from templates{f' ({reasons})' if reasons else ''}; {totals['rejected']} "
            f"ungrounded answers rejected; {totals['calls']} LLM calls, ${totals['cost_microusd'] / 1e6:.4f}; "
            f"{llm}; {totals['failed']} organizations failed")
