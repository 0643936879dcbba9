"""Run a per-organization job over every organization with recent usage, one commit each.

Whatever one organization's run raises is rolled back, counted and logged with the organization and the
message, and the job goes on with the others: otherwise one bad organization would stop the job for every
organization after it, and the retry would meet the same one first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tokentra_core.db import Conn, connect

log = logging.getLogger("tokentra.worker")


def dsn_of(ctx: Any) -> str:
    """Jobs take the worker's JobContext; tests and benchmarks call them with a bare database URL."""
    return ctx if isinstance(ctx, str) else ctx.dsn


def log_org_failure(what: str, org: str, exc: BaseException, detector: str | None = None) -> None:
    """One line an operator can act on: the job, the organization, the detector if any, and the error."""
    where = f" detector {detector}" if detector else ""
    log.warning("%s failed for organization %s%s: %s: %s", what, org, where, type(exc).__name__, exc)


def active_orgs(conn: Conn, now: datetime, days: int) -> list[str]:
    """Organizations with usage in the `days` before now."""
    return [str(r["org_id"]) for r in conn.execute(
        "select distinct org_id from analytics.usage_daily where bucket >= %s", (now - timedelta(days=days),))]


def for_each_active_org(ctx: Any, now: datetime, days: int, run_org: Callable[[Conn, str, datetime],
                        dict[str, int]], what: str, orgs: list[str] | None = None,
                        prefetch: Callable[[Conn, list[str], datetime], None] | None = None,
                        chunk: int = 100) -> tuple[int, dict[str, int]]:
    """Call run_org for each organization with usage in the last `days` (or the given ones); return how
    many were visited and the summed counters, `failed` counting organizations whose run was rolled back.
    `prefetch`, if given, is called with each chunk of organizations before their first run_org."""
    totals: dict[str, int] = defaultdict(int)
    with connect(dsn_of(ctx)) as conn:
        if orgs is None:
            orgs = active_orgs(conn, now, days)
        for i, org in enumerate(orgs):
            if getattr(ctx, "stop", None) is not None and ctx.stop.is_set():
                break  # SIGTERM: leave the rest for the next run
            if prefetch is not None and i % chunk == 0:
                try:
                    prefetch(conn, [str(o) for o in orgs[i : i + chunk]], now)
                except Exception as exc:
                    conn.rollback()  # run_org then reads what it needs itself
                    log.warning("%s prefetch failed: %s: %s", what, type(exc).__name__, exc)
            try:
                for k, v in run_org(conn, str(org), now).items():
                    totals[k] += v
                conn.commit()
            except Exception as exc:
                conn.rollback()
                totals["failed"] += 1
                log_org_failure(what, str(org), exc)
    return len(orgs), totals
