-- The rollup refresh is installed where pg_cron runs, every minute, and reports what it did; the
-- capture triggers sit on the usage table.
begin;
select plan(7);

-- scheduled every minute in pg_cron (the worker runs the same row where pg_cron is absent)
select case when tests.has_cron()
  then is(tests.cron_schedule('tokentra-usage-rollups'), '* * * * *', 'the refresh runs every minute from pg_cron')
  else is((select schedule from private.periodic_jobs where name = 'tokentra-usage-rollups'), '* * * * *',
          'the refresh runs every minute from the worker (no pg_cron here)') end;
select is((select command from private.periodic_jobs where name = 'tokentra-usage-rollups'),
          'select private.refresh_usage_rollups()', 'the worker finds the same command');

-- writes below the watermark are captured by statement-level triggers
select has_trigger('public', 'usage_records', 'capture_late_inserts', 'late inserts are captured');
select has_trigger('public', 'usage_records', 'capture_late_updates', 'updates are captured');
select has_trigger('public', 'usage_records', 'capture_late_deletes', 'deletes are captured');

-- a refresh moves the watermark up to now and says so
create temp table refreshed as select private.refresh_usage_rollups() as stats;
select ok((select (stats ->> 'caught_up')::boolean from refreshed), 'a refresh catches up to now');
select ok((select watermark from private.usage_rollup_state) <= now() + interval '1 second'
          and (select watermark from private.usage_rollup_state) >= now() - interval '1 minute',
          'the watermark is at the refresh time');

select * from finish();
rollback;
