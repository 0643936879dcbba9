"""pg_cron logs every run and never removes one; the hourly tokentra-cron-history job keeps a day of our
jobs' runs (and each job's latest), leaves other jobs' runs alone, and works off a backlog a batch at a time.
Where pg_cron lives in another database of the server (as on the machines these tests usually run on) the
purge says so; the pg_cron test runs where the tests' database has it, always inside a rolled-back
transaction."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest


def has_cron(db) -> bool:
    return db.execute("select to_regclass('cron.job_run_details') is not null as c").fetchone()["c"]


def test_the_purge_is_a_periodic_job(db):
    job = db.execute(
        "select schedule, command from private.periodic_jobs where name = 'tokentra-cron-history'"
    ).fetchone()
    assert job == {"schedule": "53 * * * *", "command": "select private.purge_cron_history()"}


def test_without_pg_cron_the_purge_and_the_status_say_so(db):
    if has_cron(db):
        pytest.skip("pg_cron schedules jobs in this database")
    msg = db.execute("select private.purge_cron_history() as m").fetchone()["m"]
    assert msg == "pg_cron is absent: no run history to purge"
    assert db.execute("select * from private.cron_job_status()").fetchall() == []


def test_the_purge_keeps_a_day_of_our_runs_each_jobs_latest_and_other_jobs_runs(db):
    if not has_cron(db):
        pytest.skip("pg_cron schedules jobs in another database of this server")
    rng = random.Random()
    now = datetime.now(UTC)

    def job(name: str) -> int:
        return db.execute("select cron.schedule(%s, '0 0 1 1 *', 'select 1') as id", (name,)).fetchone()["id"]

    def runs(jobid: int, ages: list[timedelta]) -> None:
        for i, age in enumerate(sorted(ages, reverse=True)):  # run ids grow with time, as pg_cron's do
            db.execute(
                "insert into cron.job_run_details (jobid, status, return_message, start_time, end_time) "
                "values (%s, 'succeeded', %s, %s, %s)",
                (jobid, f"run {i}", now - age, now - age),
            )

    def left(jobid: int) -> list[str]:
        rows = db.execute(
            "select return_message from cron.job_run_details where jobid = %s order by runid", (jobid,)
        ).fetchall()
        return [r["return_message"] for r in rows]

    often, rare, other = job("tokentra-test-often"), job("tokentra-test-rare"), job("someone-else")
    old = [timedelta(hours=rng.uniform(25, 24 * 40)) for _ in range(rng.randint(5, 40))]
    recent = [timedelta(hours=rng.uniform(0, 23)) for _ in range(rng.randint(1, 20))]
    runs(often, old + recent)
    runs(rare, [timedelta(days=rng.uniform(2, 90)) for _ in range(rng.randint(2, 6))])
    runs(other, old)

    rare_runs = left(rare)
    msg = db.execute("select private.purge_cron_history(batch => 2) as m").fetchone()["m"]
    assert msg.startswith("2 pg_cron runs older than"), msg  # a backlog goes a batch at a time
    db.execute("select private.purge_cron_history(batch => 100000000)")

    assert left(often) == [f"run {i}" for i in range(len(old), len(old) + len(recent))]
    assert left(rare) == rare_runs[-1:], "a job's latest run stays, however old"
    assert len(left(other)) == len(old), "other jobs' runs are not ours to remove"
    status = {
        r["job"]: r["last_message"]
        for r in db.execute("select job, last_message from private.cron_job_status()").fetchall()
    }
    assert status["tokentra-test-rare"] == rare_runs[-1]
    assert status["tokentra-test-often"] == f"run {len(old) + len(recent) - 1}"
