"""Periodic SQL runs from pg_cron where it exists, and from the worker where it does not."""

from __future__ import annotations

import subprocess
import sys

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from tokentra_core.db import connect
from tokentra_core.migrations import migrate
from tokentra_worker.periodic import run_periodic_job, schedule_periodic_sql


def test_with_pg_cron_every_periodic_job_is_a_cron_job(dsn):
    with connect(dsn) as conn:
        if conn.execute("select to_regclass('cron.job') is null as absent").fetchone()["absent"]:
            pytest.skip("pg_cron schedules jobs in another database of this server; the worker path runs here")
        jobs = {r["name"]: r["schedule"] for r in conn.execute("select name, schedule from private.periodic_jobs")}
        cron = {r["jobname"]: r["schedule"] for r in conn.execute("select jobname, schedule from cron.job")}
    assert jobs and all(cron.get(name) == sched for name, sched in jobs.items())
    # and the worker leaves them to pg_cron
    assert schedule_periodic_sql(BackgroundScheduler(), dsn) == []


def test_without_pg_cron_the_worker_schedules_and_runs_the_same_sql(scratch_dsn):
    migrate(scratch_dsn, log=lambda *_: None)
    scheduler = BackgroundScheduler()
    added = schedule_periodic_sql(scheduler, scratch_dsn)
    with connect(scratch_dsn) as conn:
        names = [r["name"] for r in conn.execute("select name from private.periodic_jobs order by name")]
        org = conn.execute("insert into public.organizations (name) values ('p') returning id").fetchone()["id"]
        key = conn.execute("select id from private.new_api_key(%s)", (org,)).fetchone()["id"]
        conn.execute("insert into private.api_key_rate_windows values (%s, now() - interval '1 hour', 5)", (key,))
        conn.commit()
    assert sorted(added) == names
    assert run_periodic_job(scratch_dsn, "tokentra-rate-window-cleanup") == "ok"
    with connect(scratch_dsn) as conn:
        assert conn.execute("select count(*) as n from private.api_key_rate_windows").fetchone()["n"] == 0
        run = conn.execute("select outcome, finished_at from private.job_runs order by id desc limit 1").fetchone()
    assert run["outcome"] == "ok" and run["finished_at"] is not None


def test_worker_once_runs_every_periodic_job_through_the_cli(scratch_dsn):
    migrate(scratch_dsn, log=lambda *_: None)
    out = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", "worker", "--once", "periodic"],
                         capture_output=True, text=True, env={"DATABASE_URL": scratch_dsn, "PATH": "/usr/bin:/bin"},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"tokentra-usage-maintenance": "ok"' in out.stdout
