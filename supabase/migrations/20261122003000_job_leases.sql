-- The worker's job runs as leases: a run is claimed in Postgres for one scheduled slot, held by a lease
-- the worker keeps extending, and taken over by another worker once the lease expires (the first one
-- died). Finishing a run checks the attempt number, so a worker that lost its lease cannot record an
-- outcome, and a SQL job that finishes in the same transaction as its work commits nothing twice.

-- ---------------------------------------------------------------- runs
alter table private.job_runs
  add column scheduled_for timestamptz,
  add column attempt integer not null default 1 constraint attempt_is_positive check (attempt >= 1),
  add column max_attempts integer not null default 1 constraint max_attempts_is_positive check (max_attempts >= 1),
  add column lease_expires_at timestamptz,
  add column next_attempt_at timestamptz,
  add column detail text,
  drop constraint outcome_is_known,
  add constraint outcome_is_known
    check (outcome in ('running', 'ok', 'retrying', 'failed', 'skipped')),
  -- The whole point: each (job, slot) is run by one worker, however many fire the same schedule.
  add constraint one_run_per_job_and_slot unique (job, scheduled_for),
  add constraint running_runs_hold_a_lease check (outcome <> 'running' or lease_expires_at is not null),
  add constraint retrying_runs_say_when check (outcome <> 'retrying' or next_attempt_at is not null);
comment on column private.job_runs.scheduled_for is
  'The schedule slot this run serves (the fire time; the claim time for `--once`). Unique per job.';
comment on column private.job_runs.attempt is 'Raised on every take-over (expired lease) and retry (after failure).';
comment on column private.job_runs.lease_expires_at is 'A running run whose lease passed belongs to no one: any worker may take it over.';
comment on column private.job_runs.next_attempt_at is 'When a retrying run is due again (exponential backoff).';
create index job_runs_due_idx on private.job_runs (coalesce(next_attempt_at, lease_expires_at))
  where outcome in ('running', 'retrying');

-- ---------------------------------------------------------------- workers
create table private.workers (
  name text primary key,
  host text not null,
  pid integer not null,
  jobs text[] not null default '{}',
  started_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  stopped_at timestamptz
);
alter table private.workers enable row level security;
comment on table private.workers is 'Worker processes and their heartbeats, for `tokentra worker status`.';

-- A worker says it is alive (and which jobs it runs) every few seconds.
create function private.worker_heartbeat(worker_name text, worker_host text, worker_pid integer, job_names text[],
                                         stopping boolean default false)
returns void
language sql volatile set search_path = '' as $$
  insert into private.workers as w (name, host, pid, jobs, stopped_at)
  values (worker_name, worker_host, worker_pid, job_names, case when stopping then now() end)
  on conflict (name) do update
    set last_seen_at = now(), jobs = excluded.jobs, stopped_at = excluded.stopped_at
$$;
comment on function private.worker_heartbeat(text, text, integer, text[], boolean) is
  'Record that a worker is alive (or stopping) and which jobs it runs.';

-- ---------------------------------------------------------------- claiming
-- Claim the run of one job for one slot. Outcomes: 'claimed' (run_id and attempt are ours), 'taken'
-- (another worker has this slot), 'busy' (another slot of the job is still running under a live lease:
-- jobs never overlap themselves). The advisory lock makes the busy check and the insert one step.
create function private.claim_job_run(job_name text, slot timestamptz, worker_name text, lease interval,
                                      attempts integer default 1)
returns table (claim text, run_id bigint, attempt integer)
language plpgsql volatile set search_path = '' as $$
declare
  new_id bigint;
begin
  perform pg_advisory_xact_lock(hashtext('tokentra.job:' || job_name));
  if exists (select 1 from private.job_runs r
              where r.job = job_name and r.outcome = 'running' and r.lease_expires_at > now()
                and r.scheduled_for is distinct from slot) then
    return query select 'busy'::text, null::bigint, null::integer;
    return;
  end if;
  insert into private.job_runs (job, worker, scheduled_for, max_attempts, lease_expires_at)
  values (job_name, worker_name, slot, greatest(attempts, 1), now() + lease)
  on conflict (job, scheduled_for) do nothing
  returning id into new_id;
  if new_id is null then
    return query select 'taken'::text, null::bigint, null::integer;
  else
    return query select 'claimed'::text, new_id, 1;
  end if;
end
$$;
comment on function private.claim_job_run(text, timestamptz, text, interval, integer) is
  'Claim job_name''s run for slot under a lease: claimed (with run id and attempt), taken or busy.';

-- Take over one run that is due again: a running run whose lease expired (its worker died) or a
-- retrying run whose backoff has passed, among the jobs this worker knows. Skips rows another worker
-- is taking over at this moment, and jobs that have another run in progress.
create function private.reclaim_job_run(worker_name text, lease interval, job_names text[])
returns table (run_id bigint, job text, attempt integer, scheduled_for timestamptz)
language plpgsql volatile set search_path = '' as $$
declare
  r record;
begin
  for r in
    select j.id, j.job from private.job_runs j
     where j.job = any (job_names)
       and ((j.outcome = 'running' and j.lease_expires_at <= now())
            or (j.outcome = 'retrying' and j.next_attempt_at <= now()))
     order by coalesce(j.next_attempt_at, j.lease_expires_at)
     for update skip locked
  loop
    perform pg_advisory_xact_lock(hashtext('tokentra.job:' || r.job));
    continue when exists (select 1 from private.job_runs o
                           where o.job = r.job and o.id <> r.id and o.outcome = 'running'
                             and o.lease_expires_at > now());
    return query
    update private.job_runs j
       set attempt = j.attempt + 1, worker = worker_name, outcome = 'running', started_at = now(),
           finished_at = null, lease_expires_at = now() + lease, next_attempt_at = null
     where j.id = r.id
    returning j.id, j.job, j.attempt, j.scheduled_for;
    return;
  end loop;
end
$$;
comment on function private.reclaim_job_run(text, interval, text[]) is
  'Take over one due run (expired lease or retry after backoff) of the given jobs; no row when none is due.';

-- Keep a lease alive; false when the run is no longer ours (taken over after our lease expired).
create function private.extend_job_lease(run_id bigint, run_attempt integer, lease interval)
returns boolean
language sql volatile set search_path = '' as $$
  with renewed as (
    update private.job_runs j set lease_expires_at = now() + lease
     where j.id = run_id and j.attempt = run_attempt and j.outcome = 'running'
    returning 1
  )
  select exists (select 1 from renewed)
$$;
comment on function private.extend_job_lease(bigint, integer, interval) is
  'Extend a running run''s lease; false when the run was taken over or finished.';

-- Record how a run ended. Raises (SQLSTATE TJ001) when the run is no longer this attempt's, so work
-- done in the same transaction is rolled back instead of committed a second time. A failure is
-- retried after `retry_in` until max_attempts; then it stays failed.
create function private.finish_job_run(run_id bigint, run_attempt integer, run_outcome text,
                                       run_error text default null, retry_in interval default null,
                                       run_detail text default null)
returns text
language plpgsql volatile set search_path = '' as $$
declare
  final_outcome text;
begin
  if run_outcome not in ('ok', 'failed') then
    raise exception 'a run ends ok or failed, not %', run_outcome using errcode = '22023';
  end if;
  update private.job_runs j
     set outcome = case when run_outcome = 'failed' and j.attempt < j.max_attempts and retry_in is not null
                        then 'retrying' else run_outcome end,
         next_attempt_at = case when run_outcome = 'failed' and j.attempt < j.max_attempts and retry_in is not null
                                then now() + retry_in end,
         finished_at = clock_timestamp(), lease_expires_at = null,
         error = left(run_error, 2000), detail = left(run_detail, 2000)
   where j.id = run_id and j.attempt = run_attempt and j.outcome = 'running'
  returning j.outcome into final_outcome;
  if final_outcome is null then
    raise exception 'job run % attempt % lost its lease', run_id, run_attempt using errcode = 'TJ001';
  end if;
  return final_outcome;
end
$$;
comment on function private.finish_job_run(bigint, integer, text, text, interval, text) is
  'End a run (ok, or failed: retrying after retry_in until max_attempts); raises TJ001 if the lease was lost.';

-- ---------------------------------------------------------------- periodic SQL through the leases
-- Execute a claimed run of a periodic SQL job and finish it, in the caller's transaction: the work and
-- its record commit together. If the lease was lost meanwhile, finish_job_run raises and the work is
-- rolled back. A dead client is noticed within two seconds even mid-statement, so a killed worker's
-- half-done run is rolled back instead of finishing unseen.
create function private.execute_job_run(run_id bigint, run_attempt integer)
returns table (outcome text, detail text)
language plpgsql volatile set search_path = '' as $$
declare
  cmd text;
  result text;
begin
  perform set_config('client_connection_check_interval', '2000', true);
  select p.command into cmd
    from private.job_runs r join private.periodic_jobs p on p.name = r.job
   where r.id = run_id;
  if cmd is null then
    raise exception 'job run % is not a periodic SQL job', run_id using errcode = 'P0002';
  end if;
  if cmd ~* '^\s*select\s' then
    execute cmd into result;
  else
    execute cmd;
  end if;
  return query select private.finish_job_run(run_id, run_attempt, 'ok', null, null, result), result;
end
$$;
comment on function private.execute_job_run(bigint, integer) is
  'Run the command of a claimed periodic-job run and record it ok, in one transaction (TJ001 if the lease was lost).';

-- The SQL entry point kept from 20261122001400: claim a run for now, execute it, finish it, all in the
-- caller's transaction.
create or replace function private.run_periodic_job(job_name text, worker_name text) returns text
language plpgsql volatile set search_path = '' as $$
declare
  c record;
begin
  if not exists (select 1 from private.periodic_jobs p where p.name = job_name) then
    raise exception 'no periodic job named %', job_name using errcode = 'P0002';
  end if;
  select * into c from private.claim_job_run(job_name, clock_timestamp(), worker_name, interval '1 hour');
  if c.claim <> 'claimed' then
    insert into private.job_runs (job, worker, finished_at, outcome, detail)
    values (job_name, worker_name, now(), 'skipped', 'another run of this job is in progress');
    return 'skipped';
  end if;
  return (select x.outcome from private.execute_job_run(c.run_id, c.attempt) x);
end
$$;
comment on function private.run_periodic_job(text, text) is
  'Run a private.periodic_jobs command now, once across workers, recorded in job_runs (worker fallback for pg_cron).';

-- ---------------------------------------------------------------- status
-- What `tokentra worker status` prints: per job its last run, runs in progress or retrying, recent
-- counts; pg_cron's own record of the jobs it runs comes from cron_job_status below.
create function private.job_status(job_names text[])
returns table (job text, last_started_at timestamptz, last_finished_at timestamptz, last_outcome text,
               last_error text, last_worker text, running integer, retrying integer, failed_24h integer,
               ok_24h integer)
language sql stable set search_path = '' as $$
  select n.job, l.started_at, l.finished_at, l.outcome, l.error, l.worker,
         (select count(*)::integer from private.job_runs r where r.job = n.job and r.outcome = 'running'),
         (select count(*)::integer from private.job_runs r where r.job = n.job and r.outcome = 'retrying'),
         (select count(*)::integer from private.job_runs r
           where r.job = n.job and r.outcome = 'failed' and r.started_at > now() - interval '1 day'),
         (select count(*)::integer from private.job_runs r
           where r.job = n.job and r.outcome = 'ok' and r.started_at > now() - interval '1 day')
    from unnest(job_names) with ordinality n(job, i)
    left join lateral (select r.* from private.job_runs r where r.job = n.job and r.outcome <> 'skipped'
                        order by r.started_at desc limit 1) l on true
   order by n.i
$$;
comment on function private.job_status(text[]) is
  'Per job: last run (start, end, outcome, error, worker), runs in progress or retrying, 24 h ok/failed counts.';

create function private.cron_job_status()
returns table (job text, schedule text, active boolean, last_status text, last_started_at timestamptz,
               last_message text)
language plpgsql stable set search_path = '' as $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    return;
  end if;
  -- Dynamic SQL: this file must also load where pg_cron (and so the cron schema) is absent.
  return query execute $q$
    select j.jobname::text, j.schedule::text, j.active, d.status::text, d.start_time, left(d.return_message, 200)
      from cron.job j
      left join lateral (select x.status, x.start_time, x.return_message from cron.job_run_details x
                          where x.jobid = j.jobid order by x.start_time desc limit 1) d on true
     where j.jobname like 'tokentra-%'
     order by j.jobname $q$;
end
$$;
comment on function private.cron_job_status() is 'Our pg_cron jobs with their last run (empty where pg_cron is absent).';

revoke all on function private.worker_heartbeat(text, text, integer, text[], boolean),
  private.claim_job_run(text, timestamptz, text, interval, integer), private.reclaim_job_run(text, interval, text[]),
  private.extend_job_lease(bigint, integer, interval),
  private.finish_job_run(bigint, integer, text, text, interval, text), private.execute_job_run(bigint, integer),
  private.job_status(text[]), private.cron_job_status() from public;
