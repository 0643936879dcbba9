"""The worker process: apscheduler runs the jobs; Postgres decides who runs each one."""

from __future__ import annotations

import logging
import signal

from apscheduler.schedulers.blocking import BlockingScheduler

from tokentra_platform.db import connect
from tokentra_platform.settings import get_settings

from .periodic import periodic_jobs, run_periodic_job, schedule_periodic_sql

log = logging.getLogger("tokentra.worker")


def run_once(job: str) -> dict[str, str]:
    """`tokentra worker --once JOB`: run one job (or `periodic` for every periodic SQL job) and return."""
    dsn = get_settings().dsn
    if job == "periodic":
        with connect(dsn) as conn:
            names = [j["name"] for j in periodic_jobs(conn)]
        return {name: run_periodic_job(dsn, name) for name in names}
    return {job: run_periodic_job(dsn, job)}


def run_forever() -> None:
    dsn = get_settings().dsn
    scheduler = BlockingScheduler(timezone="UTC")
    added = schedule_periodic_sql(scheduler, dsn)
    log.info("periodic SQL: %s", ", ".join(added) if added else "run by pg_cron")
    # SIGTERM: let the job in hand finish, then exit.
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=True))
    scheduler.start()
