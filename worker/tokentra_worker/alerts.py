"""The `alerts` job: evaluate the metric alert rules (spend spike, error rate, latency) and the reconciliation
drift rules in SQL, then deliver the outbox over HTTP and SMTP. Budget threshold events are raised by the
`budgets` job."""

from __future__ import annotations

from tokentra_core.db import connect, one
from tokentra_worker.alerting.delivery import deliver_due
from tokentra_worker.jobs import JobContext


def run_alerts(ctx: JobContext) -> str:
    with connect(ctx.dsn, autocommit=True) as conn:
        evaluated = one(conn.execute("select private.evaluate_alert_rules() as r"))["r"]
        drift = one(conn.execute("select private.evaluate_reconciliation_alerts() as r"))["r"]
        evaluated = {k: evaluated[k] + drift[k] for k in ("raised", "resolved")}
    stats = deliver_due(ctx.dsn, ctx.settings, ctx.worker, should_stop=ctx.stop.is_set)
    return f"rules: {evaluated['raised']} raised, {evaluated['resolved']} resolved; deliveries: {stats}"
