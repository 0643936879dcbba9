"""Periodic SQL where pg_cron is absent: the worker runs private.periodic_jobs on their schedules."""

from __future__ import annotations

import logging
import socket

import psycopg
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from tokentra_platform.db import connect

log = logging.getLogger("tokentra.worker")
WORKER_NAME = f"{socket.gethostname()}:{__import__('os').getpid()}"


def pg_cron_present(conn: psycopg.Connection) -> bool:
    return conn.execute("select exists(select 1 from pg_extension where extname = 'pg_cron') as p").fetchone()["p"]


def periodic_jobs(conn: psycopg.Connection) -> list[dict]:
    return conn.execute("select name, schedule from private.periodic_jobs order by name").fetchall()


def run_periodic_job(dsn: str, name: str) -> str:
    """Run one job now (skipped if another worker holds it); failures are recorded, then raised."""
    with connect(dsn, autocommit=True) as conn:
        try:
            with conn.transaction():
                outcome = conn.execute("select private.run_periodic_job(%s, %s) as o",
                                       (name, WORKER_NAME)).fetchone()["o"]
        except psycopg.Error as exc:
            conn.execute("insert into private.job_runs (job, worker, finished_at, outcome, error) "
                         "values (%s, %s, now(), 'failed', %s)", (name, WORKER_NAME, exc.diag.message_primary))
            raise
    log.info("periodic job %s: %s", name, outcome)
    return outcome


def schedule_periodic_sql(scheduler: BaseScheduler, dsn: str) -> list[str]:
    """Add the periodic SQL jobs to the scheduler unless pg_cron runs them; return the names added."""
    with connect(dsn) as conn:
        if pg_cron_present(conn):
            return []
        jobs = periodic_jobs(conn)
    for job in jobs:
        scheduler.add_job(run_periodic_job, CronTrigger.from_crontab(job["schedule"]), args=[dsn, job["name"]],
                          id=job["name"], replace_existing=True, max_instances=1, coalesce=True)
    return [job["name"] for job in jobs]
