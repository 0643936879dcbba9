-- pg_cron logs every run of every job in cron.job_run_details and never removes one. Our one-second and
-- ten-second jobs alone add about 105,000 rows a day: 30 days made 2.9 million rows and 437 MB, and the
-- status query below, one scan of that table per job, took 2.5-2.9 s. An hourly job now keeps a day of
-- our jobs' runs (and always each job's latest), and the status reads the table in one pass.

create function private.purge_cron_history(keep interval default interval '1 day', batch integer default 1000000)
returns text
language plpgsql volatile set search_path = '' as $$
declare
  n bigint;
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    return 'pg_cron is absent: no run history to purge';
  end if;
  -- Dynamic SQL: this file must also load where pg_cron (and so the cron schema) is absent. Only our
  -- jobs' runs go; a backlog is worked off a batch per run, so no single run holds a long transaction.
  execute $q$
    delete from cron.job_run_details d
     where d.runid in (
       select x.runid from cron.job_run_details x
         join cron.job j on j.jobid = x.jobid and j.jobname like 'tokentra-%'
        where x.start_time < now() - $1
          and x.runid not in (select max(y.runid) from cron.job_run_details y group by y.jobid)
        limit $2) $q$
    using keep, batch;
  get diagnostics n = row_count;
  return format('%s pg_cron runs older than %s removed', n, keep);
end
$$;
comment on function private.purge_cron_history(interval, integer) is
  'Remove our pg_cron jobs'' runs older than keep from cron.job_run_details (each job''s latest stays), at '
  'most batch rows a run; says so where pg_cron is absent.';
revoke all on function private.purge_cron_history(interval, integer) from public;

create or replace function private.cron_job_status()
returns table (job text, schedule text, active boolean, last_status text, last_started_at timestamptz,
               last_message text)
language plpgsql stable set search_path = '' as $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    return;
  end if;
  -- Dynamic SQL: this file must also load where pg_cron (and so the cron schema) is absent. The latest
  -- run per job in one pass (run ids grow with time): pg_cron indexes its log on runid alone.
  return query execute $q$
    select j.jobname::text, j.schedule::text, j.active, d.status::text, d.start_time, left(d.return_message, 200)
      from cron.job j
      left join (select distinct on (x.jobid) x.jobid, x.status, x.start_time, x.return_message
                   from cron.job_run_details x
                  where x.jobid in (select jobid from cron.job where jobname like 'tokentra-%')
                  order by x.jobid, x.runid desc) d on d.jobid = j.jobid
     where j.jobname like 'tokentra-%'
     order by j.jobname $q$;
end
$$;

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-cron-history', '53 * * * *', 'select private.purge_cron_history()',
   'pg_cron''s run log: keep a day of our jobs'' runs and each job''s latest.');

select private.schedule_periodic_jobs();
