-- The worker's record of job runs: what ran, when, how it ended. Visible in `tokentra worker status`.

create table private.job_runs (
  id bigint generated always as identity primary key,
  job text not null,
  worker text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  outcome text not null default 'running' constraint outcome_is_known
    check (outcome in ('running', 'ok', 'failed', 'skipped')),
  error text,
  constraint finished_after_started check (finished_at is null or finished_at >= started_at)
);
alter table private.job_runs enable row level security;
create index job_runs_job_started_idx on private.job_runs (job, started_at desc);
comment on table private.job_runs is 'One row per job run by a worker.';

-- Run one periodic SQL job by name, once across all workers: the advisory lock makes a second
-- worker that reaches the same job at the same moment skip it instead of running it twice.
create function private.run_periodic_job(job_name text, worker_name text) returns text
language plpgsql volatile set search_path = '' as $$
declare
  cmd text;
  run_id bigint;
begin
  select command into cmd from private.periodic_jobs where name = job_name;
  if cmd is null then
    raise exception 'no periodic job named %', job_name using errcode = 'P0002';
  end if;
  if not pg_try_advisory_xact_lock(hashtext('tokentra.job:' || job_name)) then
    insert into private.job_runs (job, worker, finished_at, outcome) values (job_name, worker_name, now(), 'skipped');
    return 'skipped';
  end if;
  insert into private.job_runs (job, worker) values (job_name, worker_name) returning id into run_id;
  execute cmd;
  update private.job_runs set finished_at = clock_timestamp(), outcome = 'ok' where id = run_id;
  return 'ok';
end
$$;
comment on function private.run_periodic_job(text, text) is
  'Run a private.periodic_jobs command once across workers and record the run (worker fallback for pg_cron).';
revoke all on function private.run_periodic_job(text, text) from public;
