"""Delivering the alert outbox (private.alert_deliveries): claim due deliveries under a lease with
FOR UPDATE SKIP LOCKED, send them, record each attempt. Any number of workers may run this at once;
each delivery attempt is made by one of them. Failed attempts back off exponentially."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from uuid import UUID

from pydantic import BaseModel

from tokentra_core.alerting.secrets import open_credential
from tokentra_core.db import Conn, connect, one
from tokentra_core.settings import Settings
from tokentra_worker.alerting.senders import Alert, SendResult, send

__all__ = ["DeliveryStats", "deliver_due"]

log = logging.getLogger("tokentra.alerts")
BATCH = 20
PARALLEL_SENDS = 8
# Keep going while a retry falls due this soon, so a short backoff does not wait for the next run.
FOLLOW_UP_SECONDS = 2.0


class DeliveryStats(BaseModel):
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return f"{self.delivered} delivered, {self.retrying} to retry, {self.failed} failed"


def retry_delay(settings: Settings, attempt: int) -> timedelta:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, +-20%."""
    delay = min(settings.alert_retry_max_seconds, settings.alert_retry_base_seconds * 2 ** (attempt - 1))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 - retry jitter, not a secret


def _credential(conn: Conn, event: dict, channel: dict) -> dict | None:
    if not event.get("rule_id") or "id" not in channel:
        return None
    row = conn.execute(
        "select org_id, ciphertext, wrapped_key from private.alert_channel_secrets "
        "where rule_id = %s and channel_id = %s",
        (event["rule_id"], channel["id"]),
    ).fetchone()
    if row is None:
        return None
    return open_credential(
        row["org_id"],
        UUID(event["rule_id"]),
        UUID(channel["id"]),
        bytes(row["ciphertext"]),
        bytes(row["wrapped_key"]),
    )


def _record(conn: Conn, row: dict, result: SendResult, settings: Settings) -> str:
    """Store one attempt's result; returns delivered, retrying or failed."""
    outcome = {"delivered": "delivered", "retry": "retry"}.get(result.outcome, "failed")
    if result.outcome == "gone":
        conn.execute(
            "select private.disable_alert_channel(%s, %s, %s)",
            (row["event"]["rule_id"], row["channel"]["id"], result.error),
        )
        log.warning("alert channel %s disabled: its endpoint answered 410", row["channel"]["id"])
    kept = one(conn.execute(
        "select private.finish_alert_delivery(%s, %s, %s, %s, %s, %s) as kept",
        (
            row["delivery_id"],
            row["attempt"],
            outcome,
            result.status_code,
            result.error,
            retry_delay(settings, row["attempt"]) if outcome == "retry" else None,
        ),
    ))["kept"]
    if not kept:
        log.warning("delivery %s: lease lost before its attempt was recorded", row["delivery_id"])
        return "failed"
    if outcome == "retry":
        state = one(conn.execute(
            "select status from private.alert_deliveries where id = %s", (row["delivery_id"],)
        ))["status"]
        return "retrying" if state == "pending" else "failed"
    return outcome


def _send_one(row: dict, settings: Settings, dsn: str) -> SendResult:
    try:
        with connect(dsn) as conn:
            credential = _credential(conn, row["event"], row["channel"])
    except Exception as exc:  # a key that no longer decrypts is a failed delivery, not a crash
        return SendResult(outcome="failed", error=f"credential unreadable: {type(exc).__name__}")
    alert = Alert(
        delivery_id=str(row["delivery_id"]),
        kind=row["kind"],
        event=row["event"],
        organization=row["org_name"],
    )
    return send(alert, row["channel"], credential, settings)


def deliver_due(
    dsn: str,
    settings: Settings,
    worker: str,
    should_stop: Callable[[], bool] = lambda: False,
    time_budget: float = 30.0,
    org_id: UUID | str | None = None,
) -> DeliveryStats:
    """Deliver what is due (of one organization, if given), in batches, for up to time_budget seconds;
    follow up on retries due soon."""
    stats = DeliveryStats()
    lease = max(60.0, 3 * settings.alert_http_timeout_seconds)
    deadline = time.monotonic() + time_budget
    with connect(dsn, autocommit=True) as conn, ThreadPoolExecutor(PARALLEL_SENDS) as pool:
        while not should_stop() and time.monotonic() < deadline:
            rows = conn.execute(
                "select * from private.claim_alert_deliveries(%s, %s, make_interval(secs => %s), %s)",
                (worker, BATCH, lease, org_id),
            ).fetchall()
            if not rows:
                wait = one(conn.execute(
                    "select extract(epoch from min(next_attempt_at) - now())::float8 as s "
                    "from private.alert_deliveries "
                    "where status = 'pending' and (%s::uuid is null or org_id = %s)",
                    (org_id, org_id),
                ))["s"]
                if wait is None or wait > FOLLOW_UP_SECONDS or time.monotonic() + wait > deadline:
                    break
                time.sleep(max(wait, 0.05))
                continue
            for row, result in zip(rows, pool.map(lambda r: _send_one(r, settings, dsn), rows), strict=True):
                state = _record(conn, row, result, settings)
                setattr(stats, state, getattr(stats, state) + 1)
                log.info(
                    "delivery %s (%s %s) attempt %s: %s%s",
                    row["delivery_id"],
                    row["channel"].get("type"),
                    row["kind"],
                    row["attempt"],
                    state,
                    f" ({result.error})" if result.error else "",
                )
    return stats
