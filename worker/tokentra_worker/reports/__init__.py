"""The `weekly_reports` job: each organization's executive summary of the last full UTC week.

The evidence comes from SQL (public.weekly_report_evidence); the LLM (task report.weekly) writes only the
prose, checked number by number against it, with one retry and the deterministic template as the
fallback (the explanations' writer). A report is stored once per organization and week (a unique key),
and storing it queues its deliveries in the alert outbox in the same transaction (email to the owners
and admins, channels marked for reports), which the alerts job sends with retries. A rerun for a week
already reported makes no provider call, writes nothing and sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from tokentra_core.db import Conn, connect, one
from tokentra_core.grounding import unsupported_numbers
from tokentra_core.llm import LLM, llm_status
from tokentra_core.settings import Settings, get_settings
from tokentra_worker._per_org import dsn_of, for_each_active_org
from tokentra_worker.explanations.writer import Written, write
from tokentra_worker.reports.templates import weekly_text

__all__ = ["SYSTEM", "TASK", "report_week", "run_weekly_reports"]

log = logging.getLogger("tokentra.worker.reports")
TASK = "report.weekly"
SYSTEM = """You write the weekly executive summary of an organization's AI spend for its owners and admins.
The evidence (JSON) was computed from their usage and is correct: `spend` compares this week (`period`,
UTC) with the week before; `top_drivers` gives, by model, feature and team, the values whose cost changed
most, with their share of the total change; `anomalies` counts the incidents that started this week and
lists the largest; `budgets_at_risk` are budgets past a threshold or projected to pass their amount, with
spend so far and projected spend at period end; `recommendations` counts those applied (this week and in
total), the monthly savings measured on the applied ones, and the savings still open.
Rules, all of them strict:
- Every number you write must appear in the evidence. Copy it, or round it (1234.5678 may be written
  $1,234.57 or $1.2k); never compute a new number, sum, difference, ratio or percentage yourself. The
  evidence already gives the percentages you may cite (fields ending in _pct).
- Dates and times are UTC, exactly as the evidence gives them (e.g. 2026-11-23).
- Write names (models, features, teams, budgets, recommendations) exactly as the evidence spells them.
- Say nothing the evidence does not support; no advice beyond it. Plain words, no markdown.
Answer with a headline (one sentence: the week's spend and its change) and a body (four to eight sentences
in short paragraphs: what drove the change, anomalies, budgets at risk, recommendations applied and what
they save)."""

_ORGS = """
select distinct d.org_id from analytics.usage_daily d
where d.bucket >= %(since)s and d.bucket < %(until)s and d.org_id <> private.internal_org_id()
  and not exists (select 1 from public.reports r where r.org_id = d.org_id and r.period_start = %(start)s)
"""
_STORE = """
insert into public.reports (org_id, period_start, period_end, headline, narrative, method, grounded, fallback_reason,
                            note, provider, model, llm_calls, input_tokens, output_tokens, cost_usd, rejected, evidence)
values (%(org)s, %(start)s, %(end)s, %(headline)s, %(narrative)s, %(method)s, %(grounded)s, %(reason)s, %(note)s,
        %(provider)s, %(model)s, %(calls)s, %(input)s, %(output)s, %(cost)s, %(rejected)s, %(evidence)s)
on conflict (org_id, period_start) do nothing
returning id
"""


def report_week(now: datetime) -> date:
    """Monday of the last full UTC week before `now`."""
    today = now.astimezone(UTC).date()
    return today - timedelta(days=today.weekday() + 7)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class _Writer:
    """One LLM for a whole job run, on one event loop: building one per organization loaded both provider
    clients (and their CA bundles) again each time. Organizations are written one after the other, so the
    writer's per-report call accounting (the LLM's calls since it started) stays each report's own."""

    def __init__(self, settings: Settings, dsn: str) -> None:
        self._settings, self._dsn = settings, dsn
        self._runner = asyncio.Runner()
        self._llm: LLM | None = None

    def write(self, org: str, evidence: dict[str, Any]) -> Written:
        return self._runner.run(self._write(org, evidence))

    async def _write(self, org: str, evidence: dict[str, Any]) -> Written:
        if self._llm is None:  # built on the loop that uses it, and only once a report is written
            self._llm = LLM(self._settings, self._dsn)
        return await write(self._llm, "weekly_report", evidence, org, task=TASK, system=SYSTEM,
                           template=weekly_text)

    def close(self) -> None:
        try:
            if self._llm is not None:
                self._runner.run(self._llm.aclose())  # waits for its usage records to be posted
        finally:
            self._runner.close()


def _store(conn: Conn, org: str, week: date, evidence: dict[str, Any], w: Written) -> dict[str, Any] | None:
    """The stored report's id and how many deliveries it queued; None if the week was reported meanwhile."""
    unsupported = unsupported_numbers(f"{w.prose.headline}\n{w.prose.body}", evidence)
    if unsupported:  # a template bug, never the LLM's (its ungrounded answers were rejected): keep, flag, say
        log.warning("weekly report of organization %s cites numbers absent from its evidence: %s", org, unsupported)
    kept = w.model_call
    row = conn.execute(_STORE, {
        "org": org, "start": _at(week), "end": _at(week + timedelta(days=7)), "headline": w.prose.headline,
        "narrative": w.prose.body, "method": w.source, "grounded": not unsupported, "reason": w.fallback_reason,
        "note": w.note, "provider": kept.provider if kept else None, "model": kept.model if kept else None,
        "calls": len(w.calls), "input": sum(c.input_tokens for c in w.calls),
        "output": sum(c.output_tokens for c in w.calls), "cost": round(sum(c.cost_usd for c in w.calls), 6),
        "rejected": Jsonb(w.rejected), "evidence": Jsonb(evidence),
    }).fetchone()
    if row is None:
        return None
    # queued by the reports' insert trigger, which has run once the statement is done
    return one(conn.execute("select %s::uuid as id, count(*)::int as queued from private.alert_deliveries "
                            "where report_id = %s", (row["id"], row["id"])))


def run_weekly_reports(ctx: Any, now: datetime | None = None, orgs: list[str] | None = None,
                       settings: Settings | None = None, week: date | None = None) -> str:
    """The job: every organization with usage in the reported week or the one before (or the given ones)
    that has no report for the week yet."""
    settings = settings or getattr(ctx, "settings", None) or get_settings()
    dsn = dsn_of(ctx)
    now = now or datetime.now(UTC)
    week = week or report_week(now)
    status = llm_status(settings)

    def run_org(conn: Conn, org: str, _now: datetime) -> dict[str, int]:
        if conn.execute("select 1 from public.reports where org_id = %s and period_start = %s",
                        (org, _at(week))).fetchone():
            return {"already": 1}
        evidence = one(conn.execute("select public.weekly_report_evidence(%s, %s) as e", (org, week)))["e"]
        conn.commit()  # no transaction held open while the LLM writes
        if evidence is None:
            return {}
        written = writer.write(org, evidence)
        stored = _store(conn, org, week, evidence, written)
        done: Counter = Counter(calls=len(written.calls), rejected=len(written.rejected),
                                cost_microusd=round(sum(c.cost_usd for c in written.calls) * 1e6))
        if stored is None:
            done["already"] += 1
            return dict(done)
        done[written.source] += 1
        done[f"reason:{written.fallback_reason}"] += written.fallback_reason is not None
        done["queued"] += stored["queued"]
        return dict(done)

    if orgs is None:
        with connect(dsn) as conn:
            orgs = [str(r["org_id"]) for r in conn.execute(_ORGS, {
                "since": _at(week - timedelta(days=7)), "until": _at(week + timedelta(days=7)),
                "start": _at(week)}).fetchall()]
    writer = _Writer(settings, dsn)
    try:
        n, totals = for_each_active_org(ctx, now, 14, run_org, "weekly_reports", orgs)
    finally:
        writer.close()
    llm = "LLM on" if status["enabled"] else f"LLM off ({status['reason']})"
    reasons = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(totals.items())
                        if k.startswith("reason:") and v)
    return (f"week of {week}: {n} organizations, {totals['llm'] + totals['template']} reports written, "
            f"{totals['llm']} by the LLM, {totals['template']} from templates{f' ({reasons})' if reasons else ''}; "
            f"{totals['already']} already reported; {totals['rejected']} ungrounded answers rejected; "
            f"{totals['queued']} deliveries queued; {totals['calls']} LLM calls, "
            f"${totals['cost_microusd'] / 1e6:.4f}; {llm}; {totals['failed']} organizations failed")
