"""The `consensus` job: review the recommendations that deserve it (see private.consensus_candidates) with
the multi-agent debate, a few at once, each run claimed, then stored and applied in one transaction.

With no provider key the job does nothing and says why; organizations at their AI spend cap are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Event
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokentra_core.db import AsyncConn, one_async
from tokentra_core.llm import LLM, llm_status
from tokentra_core.settings import Settings
from tokentra_worker._per_org import log_org_failure
from tokentra_worker.consensus.orchestrator import Outcome, debate
from tokentra_worker.consensus.triggers import candidates, capped_orgs

__all__ = ["Review", "Summary", "review_pending", "run_consensus"]

log = logging.getLogger("tokentra.worker.consensus")


@dataclass(frozen=True)
class Review:
    """One stored run, as the job and the benchmark report it."""

    run_id: str
    recommendation_id: str
    status: str
    applied: bool
    verdict: str | None
    rounds: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass
class Summary:
    candidates: int = 0
    reviews: list[Review] = field(default_factory=list)
    skipped_capped: int = 0
    skipped_busy: int = 0
    errors: int = 0

    def line(self) -> str:
        by = Counter(r.status for r in self.reviews)
        verdicts = Counter(r.verdict for r in self.reviews if r.verdict)
        cost = sum(r.cost_usd for r in self.reviews)
        return (
            f"{self.candidates} recommendations to review: {by['completed']} completed "
            f"({verdicts['accept']} accept, {verdicts['modify']} modify, {verdicts['reject']} reject), "
            f"{by['failed']} failed, {by['stopped']} stopped; {self.skipped_capped} skipped at the AI cap, "
            f"{self.skipped_busy} already under review, {self.errors} errors; ${cost:.4f} spent"
        )


async def _connect(dsn: str) -> AsyncConn:
    return await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row,
                                                 prepare_threshold=None)


async def _finish(conn: AsyncConn, run_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    cur = await conn.execute("select private.finish_consensus_run(%s, %s) as r", (run_id, Jsonb(result)))
    return (await one_async(cur))["r"]


async def _review(conn: AsyncConn, llm: LLM, s: Settings, cand: dict[str, Any]) -> Review | None:
    row = await (await conn.execute(
        "select private.start_consensus_run(%s, %s::text[], %s, %s::numeric) as id",
        (cand["recommendation_id"], cand["triggers"], Jsonb(cand["signals"]), s.consensus_rereview_change),
    )).fetchone()
    if row is None or row["id"] is None:
        return None  # another worker is reviewing it, or it is no longer open
    run_id = row["id"]
    evidence = (await one_async(await conn.execute("select evidence from public.consensus_runs where id = %s",
                                                   (run_id,))))["evidence"]
    outcome: Outcome = await debate(llm, str(cand["org_id"]), evidence, max_rounds=s.consensus_max_rounds,
                                    stop_score=s.consensus_stop_score)
    result = outcome.as_result()
    try:
        done = await _finish(conn, run_id, result)
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        # An answer the schema let through but a column refuses (e.g. an absurd figure): the run fails,
        # its calls are still kept, the recommendation is untouched.
        log.warning("consensus run %s not storable: %s", run_id, type(exc).__name__)
        done = await _finish(conn, run_id, {"status": "failed", "calls": result["calls"],
                                            "stop_reason": f"the outcome could not be stored: {exc}"[:500]})
    tokens_in, tokens_out = outcome.tokens
    return Review(str(run_id), str(cand["recommendation_id"]), done["status"], done["applied"], done["verdict"],
                  done["rounds"], len(outcome.calls), tokens_in, tokens_out, outcome.cost_usd)


async def review_pending(dsn: str, settings: Settings, *, org: str | None = None, limit: int | None = None,
                         stop: Event | None = None,
                         progress: Callable[[Review | None], None] | None = None) -> Summary:
    """Review every candidate now, `consensus_concurrency` at a time; progress is called after each."""
    summary = Summary()
    async with await _connect(dsn) as conn:
        cands = await candidates(conn, settings, org, limit)
        summary.candidates = len(cands)
        capped = await capped_orgs(conn, {str(c["org_id"]) for c in cands})
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for c in cands:
        if str(c["org_id"]) in capped:
            summary.skipped_capped += 1
        else:
            queue.put_nowait(c)

    async def lane() -> None:
        # One LLM per lane: its `calls` list then holds only the calls of the run this lane is doing.
        llm = LLM(settings, dsn)
        try:
            async with await _connect(dsn) as conn:
                while not queue.empty() and not (stop and stop.is_set()):
                    cand = queue.get_nowait()
                    if str(cand["org_id"]) in capped:
                        summary.skipped_capped += 1
                        continue
                    try:
                        review = await _review(conn, llm, settings, cand)
                    except Exception as exc:
                        # One recommendation that breaks the review must not stop the others'.
                        summary.errors += 1
                        log_org_failure(f"consensus of recommendation {cand['recommendation_id']}",
                                        str(cand["org_id"]), exc)
                        continue
                    if review is None:
                        summary.skipped_busy += 1
                    else:
                        summary.reviews.append(review)
                        if review.status == "stopped":
                            capped.add(str(cand["org_id"]))  # the rest of its candidates wait for next month
                    if progress:
                        progress(review)
        finally:
            await llm.aclose()

    lanes = min(settings.consensus_concurrency, queue.qsize())
    if lanes:
        await asyncio.gather(*(lane() for _ in range(lanes)))
    return summary


def run_consensus(ctx: Any) -> str:
    """The worker job: one pass over the candidates of every organization."""
    status = llm_status(ctx.settings)
    if not status["enabled"]:
        return f"LLM review is off ({status['reason']}): no recommendation reviewed; the detectors are unaffected"
    return asyncio.run(review_pending(ctx.dsn, ctx.settings, stop=getattr(ctx, "stop", None))).line()
