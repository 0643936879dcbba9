"""The worker process: apscheduler fires the jobs; Postgres decides which worker runs each one.

Any number of workers may run at once. SIGTERM (or Ctrl-C) stops scheduling, lets the runs in hand
finish, and exits.
"""

from __future__ import annotations

import logging
import os
import signal
import socket

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from tokentra_core.db import connect
from tokentra_core.settings import get_settings
from tokentra_worker.jobs import JOBS, Job, JobContext, all_jobs, periodic_entries, resolve
from tokentra_worker.periodic import fire, schedule_periodic_sql, trigger_for
from tokentra_worker.runs import WORKER_NAME, now_slot, run_job, take_over_due

log = logging.getLogger("tokentra.worker")
HEARTBEAT_SECONDS = 5


def run_once(job: str) -> dict[str, str]:
    """`tokentra worker --once JOB`: run one job now (or `periodic`: every periodic SQL job) and return
    {run name: outcome}. Outcomes: ok, failed: <error>, skipped (another run of it is in progress)."""
    settings = get_settings()
    dsn = settings.dsn
    ctx = JobContext(dsn=dsn, settings=settings, worker=WORKER_NAME)
    with connect(dsn) as conn:
        periodic = periodic_entries(conn)
    if job == "periodic":
        targets = [Job(name, name, periodic=name) for name in periodic]
    else:
        found = resolve(job, periodic)
        if found is None:
            known = sorted(set(JOBS) | set(periodic))
            raise KeyError(f"no job named {job!r}; known: {', '.join(known)}")
        if found.periodic and found.periodic not in periodic:
            return {found.name: f"skipped: no periodic job {found.periodic} on this database"}
        targets = [found]
    out = {}
    for target in targets:
        result = run_job(dsn, target, now_slot(), ctx, attempts=1)
        key = target.run_name if job == "periodic" else target.name
        out[key] = {"taken": "skipped", "busy": "skipped"}.get(result.outcome, result.outcome)
        if result.outcome == "failed":
            out[key] = f"failed: {result.error}"
    return out


def _heartbeat(dsn: str, jobs: list[str], stopping: bool = False) -> None:
    try:
        with connect(dsn, autocommit=True) as conn:
            conn.execute(
                "select private.worker_heartbeat(%s, %s, %s, %s, %s)",
                (WORKER_NAME, socket.gethostname(), os.getpid(), jobs, stopping),
            )
    except Exception as exc:  # the database being away is no reason to stop
        log.warning("heartbeat failed: %s", type(exc).__name__)


def _take_over(dsn: str, jobs: dict[str, Job], ctx: JobContext) -> None:
    try:
        take_over_due(dsn, jobs, ctx)
    except Exception as exc:
        log.warning("taking over due runs failed: %s", type(exc).__name__)


def build_scheduler(dsn: str, ctx: JobContext) -> tuple[BackgroundScheduler, list[str]]:
    """The scheduler with every job this worker runs: Python jobs always, SQL jobs unless pg_cron does."""
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": ThreadPoolExecutor(8)})
    with connect(dsn) as conn:
        periodic = periodic_entries(conn)
    registered = {job.periodic: job for job in JOBS.values() if job.periodic}
    sql_jobs = schedule_periodic_sql(scheduler, dsn, ctx, registered)
    names = []
    for job in JOBS.values():
        if job.run is not None and job.schedule is not None:
            scheduler.add_job(
                fire,
                trigger_for(job.schedule),
                args=[dsn, job, job.schedule, ctx],
                id=job.name,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=30,
            )
            names.append(job.name)
    runnable = {
        job.run_name: job for job in all_jobs(periodic) if job.run is not None or job.run_name in sql_jobs
    }
    scheduler.add_job(
        _take_over,
        IntervalTrigger(seconds=ctx.settings.worker_poll_seconds),
        args=[dsn, runnable, ctx],
        id="take-over",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        _heartbeat,
        IntervalTrigger(seconds=HEARTBEAT_SECONDS),
        args=[dsn, sorted(runnable)],
        id="heartbeat",
        max_instances=1,
        coalesce=True,
    )
    return scheduler, names + sql_jobs


def run_forever() -> None:
    settings = get_settings()
    dsn = settings.dsn
    ctx = JobContext(dsn=dsn, settings=settings, worker=WORKER_NAME)
    scheduler, names = build_scheduler(dsn, ctx)
    stop = ctx.stop

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: finishing the runs in hand, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _heartbeat(dsn, names)
    scheduler.start()
    log.info("worker %s running: %s", WORKER_NAME, ", ".join(names))
    while not stop.wait(1):
        pass
    scheduler.shutdown(wait=True)  # waits for the jobs in hand; no new ones start (stop is set)
    _heartbeat(dsn, names, stopping=True)
    log.info("worker %s stopped", WORKER_NAME)
