-- private.schedule_periodic_jobs installs every periodic job in pg_cron, idempotently.
begin;
select plan(3);

select private.schedule_periodic_jobs();
select private.schedule_periodic_jobs();
-- each job once, however often the installer runs
select set_eq($$ select jobname from cron.job where jobname like 'tokentra-%' $$,
              $$ select name from private.periodic_jobs $$, 'every periodic job is scheduled once');
-- a job removed from the table is unscheduled on the next run
delete from private.periodic_jobs where name = 'tokentra-usage-maintenance';
select private.schedule_periodic_jobs();
select is_empty($$ select 1 from cron.job where jobname = 'tokentra-usage-maintenance' $$,
                'a removed job is unscheduled');
-- the maintenance command itself runs
create temp table maintenance as select private.usage_maintenance() as message;
select matches((select message from maintenance), 'usage maintenance done', 'usage maintenance runs');

select * from finish();
rollback;
