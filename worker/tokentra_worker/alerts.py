"""The `alerts` job: evaluate the metric alert rules (spend spike, error rate, latency) and the reconciliation
drift rules in SQL, then deliver the outbox over HTTP and SMTP. Budget threshold events are raised by the
`budgets` job.

An evaluator that fails is logged and the others still run, and the outbox is delivered regardless: the
events already queued (budgets, reports, every other rule) must not wait on one failing evaluation."""

from __future__ import annotations

import logging

from tokentra_core.db import connect, one
from tokentra_worker.alerting.delivery import deliver_due
from tokentra_worker.jobs import JobContext

log = logging.getLogger("tokentra.worker")

EVALUATORS = ("private.evaluate_alert_rules", "private.evaluate_reconciliation_alerts")


def run_alerts(ctx: JobContext) -> str:
    evaluated = {"raised": 0, "resolved": 0}
    failed: list[str] = []
    with connect(ctx.dsn, autocommit=True) as conn:
        for fn in EVALUATORS:
            try:
                r = one(conn.execute(f"select {fn}() as r"))["r"]  # noqa: S608 - names from the constant above
            except Exception as exc:
                failed.append(fn)
                log.warning("alert evaluation %s failed: %s: %s", fn, type(exc).__name__, exc)
                continue
            for k in evaluated:
                evaluated[k] += r[k]
            for f in r.get("failed", []):
                failed.append(f"rule {f['rule_id']}")
                log.warning("%s skipped rule %s of organization %s: %s", fn, f["rule_id"], f["org_id"], f["message"])
    stats = deliver_due(ctx.dsn, ctx.settings, ctx.worker, should_stop=ctx.stop.is_set)
    failures = f" ({len(failed)} failed: {', '.join(failed)})" if failed else ""
    return (f"rules: {evaluated['raised']} raised, {evaluated['resolved']} resolved{failures}; "
            f"deliveries: {stats}")
