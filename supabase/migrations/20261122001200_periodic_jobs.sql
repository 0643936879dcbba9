-- Periodic SQL, declared once. Where pg_cron exists the jobs are scheduled there; otherwise the
-- worker reads the same table and runs the same commands on the same schedule.

create table private.periodic_jobs (
  name text primary key,
  schedule text not null,
  command text not null,
  description text not null
);
alter table private.periodic_jobs enable row level security;
comment on table private.periodic_jobs is 'Pure-SQL jobs: run by pg_cron where present, else by the worker.';

-- Keep usage partitions ahead, drop those past retention, move backfills out of the default partition.
-- No `set search_path` clause here, unlike every other function: pg_partman saves and restores the
-- search_path with a session-level set_config, which would leak our empty path into the caller's
-- session. Every name below is qualified, and the function is not security definer.
create function private.usage_maintenance() returns text
language plpgsql volatile as $$
declare
  moved bigint := 0;
begin
  if (select kind from private.usage_layout) = 'partman' then
    perform partman.run_maintenance('public.usage_records');
    -- partition_data_time creates the day partitions the stray rows need, then moves them.
    moved := partman.partition_data_time('public.usage_records', p_batch_count := 100);
    delete from private.usage_request_ids
     where occurred_at < now() - (select retention from private.usage_layout);
  end if;
  return format('usage maintenance done, %s backfilled rows moved', moved);
end
$$;
comment on function private.usage_maintenance() is
  'Partition upkeep for usage_records: premake, retention, default-partition backfills, old claims.';

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-usage-maintenance', '17 * * * *', 'select private.usage_maintenance()',
   'Usage partitions: create ahead, drop past retention, place backfills.');

-- Install every periodic job into pg_cron. Idempotent: unschedules the job names first.
create function private.schedule_periodic_jobs() returns text
language plpgsql volatile set search_path = '' as $$
declare
  job record;
  n integer := 0;
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    return 'pg_cron is absent: the worker runs the periodic jobs';
  end if;
  for job in select * from private.periodic_jobs order by name loop
    -- cron.schedule with a name replaces the job of that name, so a re-run never duplicates.
    perform cron.schedule(job.name, job.schedule, job.command);
    n := n + 1;
  end loop;
  -- Jobs of ours that were removed from the table are removed from pg_cron too.
  perform cron.unschedule(j.jobname) from cron.job j
   where j.jobname like 'tokentra-%' and j.jobname not in (select name from private.periodic_jobs);
  return format('%s periodic jobs scheduled in pg_cron', n);
end
$$;
comment on function private.schedule_periodic_jobs() is
  'Schedule private.periodic_jobs in pg_cron (idempotent); says so when pg_cron is absent.';
revoke all on function private.schedule_periodic_jobs() from public;

select private.schedule_periodic_jobs();
