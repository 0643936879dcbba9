-- Cleanup keeps successful runs of sub-minute jobs two hours and everything else fourteen days.
begin;
select plan(5);

insert into private.job_runs (job, worker, started_at, finished_at, outcome, scheduled_for, error) values
  ('tokentra-usage-live', 'w1', now() - interval '3 hours', now() - interval '3 hours', 'ok', now() - interval '3 hours', null),
  ('tokentra-usage-live', 'w1', now() - interval '3 hours', now() - interval '3 hours', 'failed', now() - interval '3 hours' + interval '1 second', 'boom'),
  ('tokentra-usage-live', 'w1', now() - interval '30 minutes', now() - interval '30 minutes', 'ok', now() - interval '30 minutes', null),
  ('tokentra-usage-rollups', 'w1', now() - interval '3 hours', now() - interval '3 hours', 'ok', now() - interval '3 hours', null),
  ('tokentra-usage-rollups', 'w1', now() - interval '15 days', now() - interval '15 days', 'ok', now() - interval '15 days', null);

select is((private.worker_cleanup() ->> 'job_runs')::integer, 2,
          'two runs removed: the old success of the one-second job and the 15-day-old run');
select is((select count(*)::integer from private.job_runs where job = 'tokentra-usage-live' and outcome = 'ok'), 1,
          'the one-second job keeps its recent success');
select is((select count(*)::integer from private.job_runs where job = 'tokentra-usage-live' and outcome = 'failed'), 1,
          'a failed run of a sub-minute job is kept for its fourteen days');
select is((select count(*)::integer from private.job_runs where job = 'tokentra-usage-rollups'
            and started_at > now() - interval '1 day'), 1,
          'a once-a-minute job keeps its three-hour-old run');
select is((select count(*)::integer from private.job_runs where job = 'tokentra-usage-rollups'
            and started_at < now() - interval '14 days'), 0, 'nothing is kept past fourteen days');

select * from finish();
rollback;
