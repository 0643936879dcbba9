-- Job runs as leases: one claim per (job, slot), no overlapping runs of a job, a finish that checks
-- its attempt, take-over of expired leases, retries after backoff until max_attempts.
begin;
select plan(9);

insert into private.periodic_jobs (name, schedule, command, description)
values ('tokentra-test-lease', '0 0 1 1 *', 'select 42', 'test');
create temp table c1 as select * from private.claim_job_run('tokentra-test-lease', '2026-01-01 00:00Z', 'w1', '1 minute', 3);
-- the first claim of a slot wins
select is((select claim from c1), 'claimed', 'the first claim of a slot wins');
-- the same slot from another worker is taken
select is((select claim from private.claim_job_run('tokentra-test-lease', '2026-01-01 00:00Z', 'w2', '1 minute')),
          'taken', 'the same slot is taken');
-- another slot while the first runs: the job does not overlap itself
select is((select claim from private.claim_job_run('tokentra-test-lease', '2026-01-01 00:01Z', 'w2', '1 minute')),
          'busy', 'a job never overlaps itself');
-- a finish with the wrong attempt raises, so work done with it rolls back
select throws_ok($$ select private.finish_job_run((select run_id from c1), 2, 'ok') $$, 'TJ001', null,
                 'a lost lease cannot finish');
-- the worker dies: once its lease expires another takes over, with the next attempt
update private.job_runs set lease_expires_at = now() - interval '1 second' where id = (select run_id from c1);
create temp table c2 as select * from private.reclaim_job_run('w2', '1 minute', array['tokentra-test-lease']);
select results_eq($$ select run_id, attempt from c2 $$, $$ select run_id, 2 from c1 $$, 'an expired lease is taken over');
-- the new holder executes the command and records it, in one transaction
select results_eq($$ select * from private.execute_job_run((select run_id from c2), 2) $$,
                  $$ values ('ok', '42') $$, 'the taken-over run completes');
-- a failure is retried after its backoff, until max_attempts
create temp table c3 as select * from private.claim_job_run('tokentra-test-lease', '2026-01-01 00:02Z', 'w1', '1 minute', 2);
select is(private.finish_job_run((select run_id from c3), 1, 'failed', 'boom', '10 seconds'), 'retrying',
          'a failure is retried');
update private.job_runs set next_attempt_at = now() where id = (select run_id from c3);
select is((select attempt from private.reclaim_job_run('w2', '1 minute', array['tokentra-test-lease'])), 2,
          'the retry comes when its backoff has passed');
select is(private.finish_job_run((select run_id from c3), 2, 'failed', 'boom again', '10 seconds'), 'failed',
          'after max_attempts a failure is final');

select * from finish();
rollback;
