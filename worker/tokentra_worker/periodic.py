"""Schedules: apscheduler triggers for the jobs, and periodic SQL where pg_cron is absent (the worker
runs private.periodic_jobs on their schedules, through the same leased runs as every other job)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tokentra_core.db import Conn, connect, one
from tokentra_core.settings import get_settings
from tokentra_worker.jobs import Job, JobContext
from tokentra_worker.runs import WORKER_NAME, now_slot, run_job

_SECONDS = re.compile(r"^\s*(\d+)\s+seconds?\s*$")
# Interval triggers count from a common origin, so every worker computes the same slots.
_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


def pg_cron_present(conn: Conn) -> bool:
    return one(conn.execute(
        "select exists(select 1 from pg_extension where extname = 'pg_cron') as p"
    ))["p"]


def periodic_jobs(conn: Conn) -> list[dict]:
    return conn.execute("select name, schedule from private.periodic_jobs order by name").fetchall()


def trigger_for(schedule: str) -> BaseTrigger:
    """A pg_cron schedule ('*/10 * * * *' or '10 seconds') as an apscheduler trigger, in UTC like pg_cron."""
    m = _SECONDS.match(schedule)
    if m:
        return IntervalTrigger(seconds=int(m.group(1)), start_date=_ORIGIN, timezone=UTC)
    return CronTrigger.from_crontab(schedule, timezone=UTC)


def slot_for(schedule: str, at: datetime) -> datetime:
    """The scheduled fire time a run started at `at` serves: the same value in every worker."""
    m = _SECONDS.match(schedule)
    if m:
        step = int(m.group(1))
        elapsed = int((at - _ORIGIN).total_seconds())
        return datetime.fromtimestamp(_ORIGIN.timestamp() + elapsed - elapsed % step, tz=UTC)
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def fire(dsn: str, job: Job, schedule: str, ctx: JobContext) -> None:
    """Scheduler callback: run the job for the current slot (if no other worker has it)."""
    if not ctx.stop.is_set():
        run_job(dsn, job, slot_for(schedule, datetime.now(UTC)), ctx)


def run_periodic_job(dsn: str, name: str) -> str:
    """Run one periodic SQL job now (skipped if a run of it is in progress); raise if it failed."""
    settings = get_settings()
    ctx = JobContext(dsn=dsn, settings=settings, worker=WORKER_NAME)
    result = run_job(dsn, Job(name, name, periodic=name), now_slot(), ctx, attempts=1)
    if result.outcome in ("taken", "busy"):
        return "skipped"
    if result.outcome != "ok":
        raise RuntimeError(f"periodic job {name} {result.outcome}: {result.error}")
    return result.outcome


def schedule_periodic_sql(
    scheduler: BaseScheduler, dsn: str, ctx: JobContext | None = None, jobs: dict[str, Job] | None = None
) -> list[str]:
    """Add the periodic SQL jobs to the scheduler unless pg_cron runs them; return the names added.

    `jobs` maps periodic names to the registered jobs standing for them (so runs carry their names)."""
    with connect(dsn) as conn:
        if pg_cron_present(conn):
            return []
        entries = periodic_jobs(conn)
    ctx = ctx or JobContext(dsn=dsn, settings=get_settings(), worker=WORKER_NAME)
    for entry in entries:
        job = (jobs or {}).get(entry["name"]) or Job(entry["name"], entry["name"], periodic=entry["name"])
        scheduler.add_job(
            fire,
            trigger_for(entry["schedule"]),
            args=[dsn, job, entry["schedule"], ctx],
            id=entry["name"],
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=30,
        )
    return [entry["name"] for entry in entries]
