"""Which recommendations the consensus job reviews now. The rules live in SQL
(`private.consensus_candidates`, 20261123000210): any one trigger suffices, over a
savings floor, for recommendations without a standing review; the thresholds come from the settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tokentra_core.db import AsyncConn
from tokentra_core.settings import Settings

__all__ = ["TRIGGERS", "candidates", "capped_orgs"]

TRIGGERS = ("high_savings", "enterprise_plan", "conflicting_signals", "production_scope", "low_confidence")


async def candidates(conn: AsyncConn, s: Settings, org: str | None,
                     limit: int | None) -> list[dict[str, Any]]:
    """{recommendation_id, org_id, triggers, signals} to review, largest savings first; runs abandoned by a
    dead worker are failed first, so their recommendations come back."""
    await conn.execute("select private.expire_consensus_runs(%s)",
                       (timedelta(seconds=s.consensus_run_timeout_seconds),))
    cur = await conn.execute(
        "select * from private.consensus_candidates(%s::numeric, %s::numeric, %s::numeric, %s::numeric, %s,"
        " %s::integer, %s::uuid)",
        (s.consensus_min_savings, s.consensus_min_confidence, s.consensus_floor_savings, s.consensus_signal_change,
         timedelta(hours=s.consensus_retry_hours), limit or s.consensus_max_per_run, org),
    )
    return await cur.fetchall()


async def capped_orgs(conn: AsyncConn, orgs: set[str]) -> set[str]:
    """Organizations whose AI spend this month has reached their cap: no run is started for them."""
    capped = set()
    for org in orgs:
        row = await (await conn.execute("select spend_usd >= cap_usd as capped from public.ai_spend(%s)",
                                        (org,))).fetchone()
        if row and row["capped"]:
            capped.add(org)
    return capped
