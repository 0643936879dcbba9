"""Job runs claimed through Postgres: one run per slot however many workers fire it, leases that expire
when a worker dies (the run is then completed exactly once by another), SIGTERM finishing the run in
hand, crashing jobs retried with backoff without taking the worker down, and `tokentra worker status`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from worker_helpers import query, wait_for

from tokentra_core.db import connect
from tokentra_core.settings import get_settings
from tokentra_dev.pooler import direct
from tokentra_worker.jobs import Job, JobContext
from tokentra_worker.main import build_scheduler
from tokentra_worker.runs import run_job, take_over_due


def add_periodic(dsn: str, name: str, command: str, schedule: str = "0 0 1 1 *") -> None:
    query(
        dsn,
        "insert into private.periodic_jobs (name, schedule, command, description) "
        "values (%s, %s, %s, 'test')",
        (name, schedule, command),
    )


def runs(dsn: str, job: str) -> list[dict]:
    return query(dsn, "select * from private.job_runs where job = %s order by id", (job,))


def ctx(dsn: str, worker: str = "test", **settings) -> JobContext:
    return JobContext(dsn=dsn, settings=get_settings().model_copy(update=settings), worker=worker)


def test_many_workers_firing_the_same_slot_run_it_once(worker_dsn):
    query(worker_dsn, "create table public.marks (id serial primary key)")
    query(worker_dsn, "alter table public.marks enable row level security")
    add_periodic(
        worker_dsn,
        "tokentra-test-mark",
        "with m as (insert into public.marks default values returning id) select count(*) from m",
    )
    job, slot = (
        Job("tokentra-test-mark", "", periodic="tokentra-test-mark"),
        datetime.now(UTC).replace(microsecond=0),
    )
    with ThreadPoolExecutor(12) as pool:
        results = list(
            pool.map(lambda i: run_job(worker_dsn, job, slot, ctx(worker_dsn, f"w{i}")), range(12))
        )
    assert sorted(r.outcome for r in results).count("ok") == 1
    assert {r.outcome for r in results} <= {"ok", "taken", "busy"}
    assert query(worker_dsn, "select count(*) as n from public.marks")[0]["n"] == 1
    assert len(runs(worker_dsn, "tokentra-test-mark")) == 1


def test_a_worker_killed_mid_job_is_taken_over_after_its_lease_and_completes_exactly_once(
    worker_dsn, start_worker
):
    query(worker_dsn, "create table public.marks (id serial primary key, at timestamptz default now())")
    query(worker_dsn, "alter table public.marks enable row level security")
    # The job writes its mark, then waits for a lock this test holds: the first worker is surely killed
    # mid-job (a fixed sleep could end, and commit, before a slow machine delivered the kill).
    add_periodic(
        worker_dsn,
        "tokentra-test-slow",
        "with m as (insert into public.marks default values returning id) "
        f"select pg_advisory_xact_lock_shared({JOB_GATE}), count(*) from m",
    )
    # A session lock, so held on a direct connection (a transaction pooler would lend its server session out).
    with connect(direct(worker_dsn), autocommit=True) as gate:
        gate.execute("select pg_advisory_lock(%s)", (JOB_GATE,))
        first = start_worker("--once", "tokentra-test-slow")
        wait_for(lambda: _waiting_at_gate(worker_dsn), what="the job to be running")
        first.send_signal(signal.SIGKILL)  # the worker dies mid-job, its transaction uncommitted
        first.wait(10)
        (run,) = runs(worker_dsn, "tokentra-test-slow")
        assert (run["outcome"], run["attempt"]) == ("running", 1)
        # Its server process notices the dead client (client_connection_check_interval) and rolls back;
        # only then does the gate open, so the dead attempt can never reach its commit.
        wait_for(lambda: not _waiting_at_gate(worker_dsn), what="the dead worker's transaction to end")
    # A long lease for the second worker: on a loaded machine a late renewal of a 2-second lease would let
    # it take over its own run, which is not what this test is about (the first worker's lease is 2 s).
    second = start_worker(TOKENTRA_WORKER_LEASE_SECONDS="30")
    done = wait_for(
        lambda: [r for r in runs(worker_dsn, "tokentra-test-slow") if r["outcome"] == "ok"],
        timeout=60,
        what="the run to be taken over and completed",
    )
    (run,) = runs(worker_dsn, "tokentra-test-slow")
    assert (
        done and (run["outcome"], run["attempt"]) == ("ok", 2) and run["worker"] != "" and run["finished_at"]
    )
    assert query(worker_dsn, "select count(*) as n from public.marks")[0]["n"] == 1  # the work, exactly once
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0


JOB_GATE = 7_261_203


def _waiting_at_gate(dsn: str) -> bool:
    return bool(query(
        dsn,
        "select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and not l.granted and l.objid = %s::oid and a.datname = current_database()",
        (JOB_GATE,),
    ))


def test_sigterm_finishes_the_run_in_hand_then_exits(worker_dsn, start_worker):
    add_periodic(worker_dsn, "tokentra-test-sleepy", "select pg_sleep(3)", schedule="2 seconds")
    proc = start_worker()
    wait_for(
        lambda: [r for r in runs(worker_dsn, "tokentra-test-sleepy") if r["outcome"] == "running"],
        what="a run in progress",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    outcomes = [r["outcome"] for r in runs(worker_dsn, "tokentra-test-sleepy")]
    assert outcomes and set(outcomes) == {"ok"}  # the run in hand finished; none left running
    (w,) = query(worker_dsn, "select stopped_at from private.workers")
    assert w["stopped_at"] is not None


def test_a_crashing_job_is_retried_with_backoff_and_the_worker_keeps_going(worker_dsn, start_worker):
    query(worker_dsn, "create table public.crash_flag (ok boolean)")
    query(worker_dsn, "alter table public.crash_flag enable row level security")
    add_periodic(
        worker_dsn, "tokentra-test-crash", "select 1 / (select count(*) from public.crash_flag)::integer"
    )
    job = Job("tokentra-test-crash", "", periodic="tokentra-test-crash")
    first = run_job(worker_dsn, job, datetime.now(UTC), ctx(worker_dsn, worker_retry_base_seconds=0.3))
    assert first.outcome == "retrying" and "division by zero" in first.error
    proc = start_worker()
    wait_for(lambda: [r for r in runs(worker_dsn, job.name) if r["attempt"] >= 3], what="two retries")
    (run,) = runs(worker_dsn, job.name)
    assert run["outcome"] in ("retrying", "running") and "division by zero" in (
        run["error"] or "division by zero"
    )
    assert proc.poll() is None  # still alive
    query(worker_dsn, "insert into public.crash_flag values (true)")
    wait_for(lambda: runs(worker_dsn, job.name)[0]["outcome"] == "ok", what="the retry to succeed")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_backoff_doubles_between_attempts(worker_dsn):
    add_periodic(worker_dsn, "tokentra-test-fail", "select 1 / 0")
    job = Job("tokentra-test-fail", "", periodic="tokentra-test-fail")
    c = ctx(worker_dsn, worker_retry_base_seconds=10, worker_max_attempts=4)
    assert run_job(worker_dsn, job, datetime.now(UTC), c).outcome == "retrying"
    delays = []
    for _ in range(3):
        (run,) = runs(worker_dsn, job.name)
        delays.append(
            (run["next_attempt_at"] - run["finished_at"]).total_seconds() if run["next_attempt_at"] else None
        )
        query(worker_dsn, "update private.job_runs set next_attempt_at = now() where job = %s", (job.name,))
        take_over_due(worker_dsn, {job.name: job}, c)
    (run,) = runs(worker_dsn, job.name)
    assert (run["outcome"], run["attempt"]) == ("failed", 4)  # gave up after max attempts, error kept
    assert 8 <= delays[0] <= 12 and 16 <= delays[1] <= 24 and 32 <= delays[2] <= 48


def test_worker_once_runs_the_named_jobs_and_status_shows_them(worker_dsn):
    env = {
        "DATABASE_URL": worker_dsn,
        "PATH": "/usr/bin:/bin",
        "HOME": str(get_settings().home.parent.parent),
    }
    for name in ("budgets", "rollups", "alerts"):
        out = subprocess.run(
            [sys.executable, "-m", "tokentra_cli.cli", "worker", "--once", name],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {name: "ok"}
    out = subprocess.run(
        [sys.executable, "-m", "tokentra_cli.cli", "worker", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    status = json.loads(out.stdout)
    jobs = {j["name"]: j for j in status["jobs"]}
    assert {"rollups", "budgets", "alerts"} <= set(jobs)
    assert all(
        jobs[n]["last_outcome"] == "ok" and jobs[n]["ok_24h"] >= 1 for n in ("rollups", "budgets", "alerts")
    )
    assert jobs["budgets"]["schedule"] == "10 seconds" and jobs["budgets"]["runs_in"] == "worker"
    assert status["pg_cron"] is False
    bad = subprocess.run(
        [sys.executable, "-m", "tokentra_cli.cli", "worker", "--once", "nonsense"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 1 and "no job named" in bad.stderr


def test_with_pg_cron_the_worker_schedules_only_python_jobs(dsn):
    with connect(dsn) as conn:
        if conn.execute("select to_regclass('cron.job') is null as absent").fetchone()["absent"]:
            pytest.skip("pg_cron schedules jobs in another database of this server; the worker path runs here")
    scheduler, names = build_scheduler(dsn, ctx(dsn))
    assert isinstance(scheduler, BackgroundScheduler)
    ids = {j.id for j in scheduler.get_jobs()}
    assert "alerts" in ids and "tokentra-budgets" not in ids and "tokentra-usage-rollups" not in ids
    assert "alerts" in names and not [n for n in names if n.startswith("tokentra-")]


@pytest.mark.parametrize(
    "schedule, fire, slot",
    [
        ("10 seconds", "2026-11-22T10:00:07.900Z", "2026-11-22T10:00:00Z"),
        ("*/5 * * * *", "2026-11-22T10:05:00.300Z", "2026-11-22T10:05:00Z"),
    ],
)
def test_every_worker_computes_the_same_slot(schedule, fire, slot):
    from tokentra_worker.periodic import slot_for

    assert slot_for(schedule, datetime.fromisoformat(fire)) == datetime.fromisoformat(slot)
