"""The reconciliation job's last step: once the providers' reports are synced, reconcile the last days of
every organization with an admin key in SQL (tracked against billed, the gap by cause) and evaluate the
drift alert rules on the fresh rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tokentra_core.db import connect, one

__all__ = ["run_gap_causes"]

DAYS = 31  # the sync's backfill: every day it may have revised


def run_gap_causes(ctx: Any, days: int = DAYS, orgs: list[str] | None = None) -> str:
    """Reconcile (every organization with an admin key, or `orgs`) and evaluate drift alerts; a one-line
    summary. `ctx` is a JobContext or a database URL."""
    dsn = ctx if isinstance(ctx, str) else ctx.dsn
    with connect(dsn) as conn:
        if orgs is None:
            done = one(conn.execute("select private.reconcile_all(%s) as r", (days,)))["r"]["organizations"]
        else:
            today = datetime.now(UTC).date()
            for org in orgs:
                conn.execute("select private.reconcile(%s, %s, %s)", (org, today - timedelta(days=days), today))
            done = len(orgs)
        conn.commit()
        alerts = one(conn.execute("select private.evaluate_reconciliation_alerts() as r"))["r"]
        conn.commit()
    return f"reconciled {done} organization(s); drift alerts: {alerts['raised']} raised, {alerts['resolved']} resolved"
