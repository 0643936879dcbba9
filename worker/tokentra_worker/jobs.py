"""Every job the worker knows, with its schedule, in one place.

A job is a named, idempotent unit. Pure-SQL jobs are entries of `private.periodic_jobs` (their schedule
lives there, so pg_cron and the worker read the same one): where pg_cron exists it runs them and the
worker leaves them alone; `tokentra worker --once NAME` runs one anyway. Python jobs (HTTP, SMTP,
numerical work) always run in the worker, on the schedule given here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Event

from tokentra_core.db import Conn
from tokentra_core.settings import Settings

__all__ = ["JOBS", "Job", "JobContext", "resolve"]


@dataclass
class JobContext:
    """What a Python job gets: where the database is, the settings, and the worker's stop signal."""

    dsn: str
    settings: Settings
    worker: str
    stop: Event = field(default_factory=Event)


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    # SQL jobs: the private.periodic_jobs entry they run (its schedule is the one that counts).
    periodic: str | None = None
    # Python jobs: a cron expression ("*/5 * * * *") or "N seconds", and the function, which returns
    # a one-line summary of what it did and raises on failure.
    schedule: str | None = None
    run: Callable[[JobContext], str] | None = None

    @property
    def run_name(self) -> str:
        """The name its runs are recorded under in private.job_runs."""
        return self.periodic or self.name


def _alerts(ctx: JobContext) -> str:
    from tokentra_worker.alerts import run_alerts

    return run_alerts(ctx)


def _anomalies(ctx: JobContext) -> str:
    from tokentra_worker.anomalies import run_anomalies

    return run_anomalies(ctx)


def _forecasts(ctx: JobContext) -> str:
    from tokentra_worker.forecasts import run_forecasts

    return run_forecasts(ctx)


def _recommendations(ctx: JobContext) -> str:
    from tokentra_worker.recommendations import run_recommendations

    return run_recommendations(ctx)


def _consensus(ctx: JobContext) -> str:
    from tokentra_worker.consensus import run_consensus

    return run_consensus(ctx)


def _reconciliation(ctx: JobContext) -> str:
    from tokentra_worker.gap_causes import run_gap_causes
    from tokentra_worker.provider_sync import run_provider_sync

    synced = run_provider_sync(ctx)
    return f"{synced}; {run_gap_causes(ctx)}"


def _cache_graphs(ctx: JobContext) -> str:
    from tokentra_worker.cache_graphs import run_cache_graphs

    return run_cache_graphs(ctx)


def _explanations(ctx: JobContext) -> str:
    from tokentra_worker.explanations import run_explanations

    return run_explanations(ctx)


def _weekly_reports(ctx: JobContext) -> str:
    from tokentra_worker.reports import run_weekly_reports

    return run_weekly_reports(ctx)


# The named jobs of the issues: rollups, budgets, alerts here; anomalies, forecasts, recommendations
# and consensus join them in the next issues.
JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("rollups", "Usage rollups: materialize, fold late events, broadcast usage.",
            periodic="tokentra-usage-rollups"),
        Job("budgets", "Budgets: threshold alerts, status broadcasts, period resolution, reservation sweep.",
            periodic="tokentra-budgets"),
        Job("alerts", "Alerts: evaluate spend-spike, error-rate and latency rules; deliver the outbox.",
            schedule="5 seconds", run=_alerts),
        Job("anomalies", "Anomalies: seasonal baselines, robust scores per dimension; incidents, alerts.",
            schedule="*/10 * * * *", run=_anomalies),
        Job("forecasts", "Forecasts: month-end spend per organization and budget, intervals, exhaustion.",
            schedule="15 * * * *", run=_forecasts),
        Job("recommendations", "Recommendations: the optimization detectors over the rollups; lifecycle.",
            schedule="30 * * * *", run=_recommendations),
        Job("consensus", "Consensus: multi-agent review of high-stakes recommendations (off without LLM keys).",
            schedule="45 * * * *", run=_consensus),
        Job("explanations", "Explanations: grounded prose for open anomalies and recommendations (templates "
            "without LLM keys).", schedule="5-59/10 * * * *", run=_explanations),
        Job("weekly_reports", "Weekly reports: each organization's grounded summary of last week, emailed to its "
            "owners and admins and sent to channels marked for reports (templates without LLM keys).",
            # "mon", not 1: apscheduler numbers weekdays from Monday = 0, so a crontab 1 would fire on Tuesday.
            schedule="0 7 * * mon", run=_weekly_reports),
        Job("reconciliation", "Reconciliation: sync the providers' own usage and cost reports through each "
            "connection's admin key (backfill, then recent days again), then reconcile them with tracked usage and "
            "evaluate drift alerts.", schedule="*/15 * * * *",
            run=_reconciliation),
        Job("cache_graphs", "Semantic cache: build a graph of its own for each scope over 2,000 entries that "
            "shares its partition, concurrently, and drop those no longer needed.", schedule="*/10 * * * *",
            run=_cache_graphs),
    )
}


def periodic_entries(conn: Conn) -> dict[str, dict]:
    """private.periodic_jobs by name: {name: {schedule, command, description}}."""
    rows = conn.execute("select name, schedule, description from private.periodic_jobs order by name")
    return {r["name"]: r for r in rows.fetchall()}


def resolve(name: str, periodic: dict[str, dict]) -> Job | None:
    """The job an operator means by `name`: a registered job, or any periodic SQL job by its own name."""
    job = JOBS.get(name)
    if job is not None:
        return job
    entry = periodic.get(name)
    if entry is not None:
        return Job(name, entry["description"], periodic=name)
    return None


def all_jobs(periodic: dict[str, dict]) -> list[Job]:
    """Registered jobs first, then every periodic SQL job no registered job already stands for."""
    jobs = list(JOBS.values())
    covered = {j.periodic for j in jobs if j.periodic}
    jobs += [Job(name, entry["description"], periodic=name)
             for name, entry in periodic.items() if name not in covered]
    return jobs
