-- private.schedule_periodic_jobs installs every periodic job in pg_cron, idempotently; where pg_cron is
-- absent (any database but the server's cron database) it says the worker runs them.
begin;
select plan(3);

select private.schedule_periodic_jobs();
create temp table second_run as select private.schedule_periodic_jobs() as message;
-- each job once, however often the installer runs
select case when tests.has_cron()
  then set_eq($$ select jobname from cron.job where jobname like 'tokentra-%' $$,
              $$ select name from private.periodic_jobs $$, 'every periodic job is scheduled once')
  else is((select message from second_run), 'pg_cron is absent: the worker runs the periodic jobs',
          'without pg_cron the installer leaves the jobs to the worker') end;
-- a job removed from the table is unscheduled on the next run
delete from private.periodic_jobs where name = 'tokentra-usage-maintenance';
select private.schedule_periodic_jobs();
select case when tests.has_cron()
  then is_empty($$ select 1 from cron.job where jobname = 'tokentra-usage-maintenance' $$,
                'a removed job is unscheduled')
  else skip('pg_cron is absent: nothing is scheduled, so nothing to unschedule', 1) end;
-- the maintenance command itself runs
create temp table maintenance as select private.usage_maintenance() as message;
select matches((select message from maintenance), 'usage maintenance done', 'usage maintenance runs');

select * from finish();
rollback;
