"""`tokentra worker status`: workers alive, every job's schedule, who runs it and how its runs went."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from tokentra_core.db import Conn, one
from tokentra_worker.jobs import all_jobs, periodic_entries
from tokentra_worker.periodic import pg_cron_present

ALIVE_SECONDS = 30


class WorkerInfo(BaseModel):
    name: str
    alive: bool
    started_at: datetime
    last_seen_at: datetime
    jobs: list[str]


class JobInfo(BaseModel):
    name: str
    run_name: str
    kind: str  # sql or python
    schedule: str | None
    runs_in: str  # pg_cron or worker
    description: str
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_outcome: str | None = None
    last_error: str | None = None
    last_worker: str | None = None
    running: int = 0
    retrying: int = 0
    ok_24h: int = 0
    failed_24h: int = 0


class OutboxInfo(BaseModel):
    pending: int
    sending: int
    delivered_24h: int
    failed: int


class WorkerStatus(BaseModel):
    pg_cron: bool
    workers: list[WorkerInfo]
    jobs: list[JobInfo]
    alert_outbox: OutboxInfo


def read_status(conn: Conn) -> WorkerStatus:
    cron = pg_cron_present(conn)
    periodic = periodic_entries(conn)
    schedules = {
        r["name"]: r["schedule"]
        for r in conn.execute("select name, schedule from private.periodic_jobs").fetchall()
    }
    jobs = all_jobs(periodic)
    runs = {
        r["job"]: r
        for r in conn.execute(
            "select * from private.job_status(%s)", ([j.run_name for j in jobs],)
        ).fetchall()
    }
    cron_runs = {r["job"]: r for r in conn.execute("select * from private.cron_job_status()").fetchall()}
    infos = []
    for job in jobs:
        r = runs.get(job.run_name) or {}
        info = JobInfo(
            name=job.name,
            run_name=job.run_name,
            kind="sql" if job.periodic else "python",
            schedule=schedules.get(job.periodic) if job.periodic else job.schedule,
            runs_in="pg_cron" if job.periodic and cron else "worker",
            description=job.description,
            last_started_at=r.get("last_started_at"),
            last_finished_at=r.get("last_finished_at"),
            last_outcome=r.get("last_outcome"),
            last_error=r.get("last_error"),
            last_worker=r.get("last_worker"),
            running=r.get("running") or 0,
            retrying=r.get("retrying") or 0,
            ok_24h=r.get("ok_24h") or 0,
            failed_24h=r.get("failed_24h") or 0,
        )
        c = cron_runs.get(job.run_name)
        # pg_cron's own record is the one that counts for jobs it runs.
        if (
            c
            and c["last_started_at"]
            and (info.last_started_at is None or c["last_started_at"] > info.last_started_at)
        ):
            info.last_started_at = c["last_started_at"]
            info.last_outcome = {"succeeded": "ok"}.get(c["last_status"], c["last_status"])
            info.last_worker = "pg_cron"
            info.last_error = None if c["last_status"] == "succeeded" else c["last_message"]
        infos.append(info)
    workers = [
        WorkerInfo(**w)
        for w in conn.execute(
            "select name, started_at, last_seen_at, jobs, "
            "stopped_at is null and last_seen_at > now() - make_interval(secs => %s) as alive "
            "from private.workers order by last_seen_at desc limit 20",
            (ALIVE_SECONDS,),
        ).fetchall()
    ]
    outbox = one(conn.execute(
        "select count(*) filter (where status = 'pending')::int as pending, "
        "count(*) filter (where status = 'sending')::int as sending, "
        "count(*) filter (where status = 'delivered' and delivered_at > now() - interval '1 day')::int "
        "as delivered_24h, "
        "count(*) filter (where status = 'failed')::int as failed from private.alert_deliveries"
    ))
    return WorkerStatus(pg_cron=cron, workers=workers, jobs=infos, alert_outbox=OutboxInfo(**outbox))
