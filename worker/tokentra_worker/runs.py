"""One job run, claimed through Postgres so that each scheduled run executes once however many workers
fire it, held by a lease this process keeps extending, and taken over by another worker if this one
dies. Failures are recorded and retried with exponential backoff; nothing here raises into the
scheduler."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from datetime import UTC, datetime, timedelta

import psycopg
from pydantic import BaseModel

from tokentra_core.db import connect, one
from tokentra_core.settings import Settings
from tokentra_worker.jobs import Job, JobContext

log = logging.getLogger("tokentra.worker")
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
LEASE_LOST = "TJ001"


class Claim(BaseModel):
    run_id: int
    attempt: int


class RunResult(BaseModel):
    job: str
    outcome: str  # ok, retrying, failed, taken, busy, lost
    detail: str | None = None
    error: str | None = None


def backoff(settings: Settings, attempt: int) -> timedelta:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, +-20%."""
    delay = min(settings.worker_retry_max_seconds, settings.worker_retry_base_seconds * 2 ** (attempt - 1))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 - retry jitter, not a secret


def claim(
    dsn: str, job: Job, slot: datetime, settings: Settings, worker: str, attempts: int | None = None
) -> tuple[str, Claim | None]:
    """Claim job's run for slot: ('claimed', Claim), ('taken', None) or ('busy', None)."""
    with connect(dsn, autocommit=True) as conn:
        row = one(conn.execute(
            "select * from private.claim_job_run(%s, %s, %s, make_interval(secs => %s), %s)",
            (
                job.run_name,
                slot,
                worker,
                settings.worker_lease_seconds,
                settings.worker_max_attempts if attempts is None else attempts,
            ),
        ))
    if row["claim"] != "claimed":
        return row["claim"], None
    return "claimed", Claim(run_id=row["run_id"], attempt=row["attempt"])


class LeaseKeeper:
    """Extends a run's lease every third of its length until stopped; notes when the lease is lost."""

    def __init__(self, dsn: str, claim: Claim, lease_seconds: float) -> None:
        self._dsn, self._claim, self._lease = dsn, claim, lease_seconds
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._loop, name=f"lease-{claim.run_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self._lease / 3):
            try:
                with connect(self._dsn, autocommit=True) as conn:
                    kept = one(conn.execute(
                        "select private.extend_job_lease(%s, %s, make_interval(secs => %s)) as k",
                        (self._claim.run_id, self._claim.attempt, self._lease),
                    ))["k"]
            except psycopg.Error:
                log.warning("run %s: could not extend its lease (database unreachable?)", self._claim.run_id)
                continue
            if not kept:
                self.lost = True
                log.warning("run %s: lease lost to another worker", self._claim.run_id)
                return


def execute(dsn: str, job: Job, run: Claim, ctx: JobContext) -> RunResult:
    """Execute a claimed run and record its outcome. SQL jobs commit their work and their record in one
    transaction; a Python job records its outcome after it returns (Python jobs are idempotent)."""
    settings = ctx.settings
    with LeaseKeeper(dsn, run, settings.worker_lease_seconds):
        try:
            if job.periodic:
                with connect(dsn, autocommit=True) as conn, conn.transaction():
                    # Postgres arms the check for a vanished client when a statement starts, so it is set
                    # before the job's statement: if this process dies mid-job, its server process stops
                    # within 2 s and rolls back, instead of running the job to its end and committing it.
                    conn.execute("select set_config('client_connection_check_interval', '2000', true)")
                    row = one(conn.execute(
                        "select * from private.execute_job_run(%s, %s)", (run.run_id, run.attempt)
                    ))
                return RunResult(job=job.name, outcome=row["outcome"], detail=row["detail"])
            if job.run is None:
                raise ValueError(f"job {job.name} has neither a periodic entry nor a function")
            detail = job.run(ctx)
            return _finish(dsn, job, run, "ok", detail=detail)
        except psycopg.Error as exc:
            if exc.sqlstate == LEASE_LOST:
                log.warning("job %s run %s: lease lost; its work was rolled back", job.name, run.run_id)
                return RunResult(job=job.name, outcome="lost", error="lease lost")
            return _failed(dsn, job, run, exc, settings)
        except Exception as exc:  # a crashing job is recorded and retried, never fatal to the worker
            return _failed(dsn, job, run, exc, settings)


def _failed(dsn: str, job: Job, run: Claim, exc: Exception, settings: Settings) -> RunResult:
    message = _describe(exc)
    log.error(
        "job %s run %s attempt %s failed: %s",
        job.name,
        run.run_id,
        run.attempt,
        message,
        exc_info=not isinstance(exc, psycopg.Error),
    )
    try:
        return _finish(dsn, job, run, "failed", error=message, retry_in=backoff(settings, run.attempt))
    except Exception as record_exc:  # the database itself is gone: the lease will expire and retry
        log.error(
            "job %s run %s: could not record the failure: %s", job.name, run.run_id, _describe(record_exc)
        )
        return RunResult(job=job.name, outcome="failed", error=message)


def _finish(
    dsn: str,
    job: Job,
    run: Claim,
    outcome: str,
    detail: str | None = None,
    error: str | None = None,
    retry_in: timedelta | None = None,
) -> RunResult:
    with connect(dsn, autocommit=True) as conn:
        final = one(conn.execute(
            "select private.finish_job_run(%s, %s, %s, %s, %s, %s) as o",
            (run.run_id, run.attempt, outcome, error, retry_in, detail),
        ))["o"]
    return RunResult(job=job.name, outcome=final, detail=detail, error=error)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return f"{type(exc).__name__}: {exc.diag.message_primary}"
    return f"{type(exc).__name__}: {exc}"[:500]


def run_job(dsn: str, job: Job, slot: datetime, ctx: JobContext, attempts: int | None = None) -> RunResult:
    """Claim job's run for slot and, if this worker got it, execute it."""
    try:
        got, run = claim(dsn, job, slot, ctx.settings, ctx.worker, attempts)
    except psycopg.Error as exc:
        log.error("job %s: cannot claim a run: %s", job.name, _describe(exc))
        return RunResult(job=job.name, outcome="failed", error=_describe(exc))
    if run is None:
        log.debug("job %s slot %s: %s", job.name, slot.isoformat(), got)
        return RunResult(job=job.name, outcome=got)
    result = execute(dsn, job, run, ctx)
    log.info(
        "job %s run %s: %s%s",
        job.name,
        run.run_id,
        result.outcome,
        f" ({result.detail})" if result.detail else "",
    )
    return result


def take_over_due(dsn: str, jobs: dict[str, Job], ctx: JobContext) -> list[RunResult]:
    """Execute runs that are due again: leases of dead workers, and failed runs whose backoff passed."""
    results: list[RunResult] = []
    while not ctx.stop.is_set():
        with connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "select * from private.reclaim_job_run(%s, make_interval(secs => %s), %s)",
                (ctx.worker, ctx.settings.worker_lease_seconds, list(jobs)),
            ).fetchone()
        if row is None:
            return results
        job = jobs[row["job"]]
        log.info("job %s run %s: taking over, attempt %s", job.name, row["run_id"], row["attempt"])
        results.append(execute(dsn, job, Claim(run_id=row["run_id"], attempt=row["attempt"]), ctx))
    return results


def now_slot() -> datetime:
    """A slot of its own, for a run started by hand (`--once`)."""
    return datetime.now(UTC)
