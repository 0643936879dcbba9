-- The delivery outbox: claimed with FOR UPDATE SKIP LOCKED under a lease, attempts recorded with
-- backoff until max_attempts, a stale attempt ignored, members read their organization's deliveries.
begin;
select plan(8);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000ad001', 'outbox');
insert into public.alert_rules (id, org_id, name, type, channels) values
  ('00000000-0000-0000-0000-0000000ad0a1', '00000000-0000-0000-0000-0000000ad001', 'r', 'spend_spike',
   '[{"id": "00000000-0000-0000-0000-0000000ad0c1", "type": "email", "to": ["a@example.com"]}]');
insert into public.alert_events (id, org_id, rule_id, dedup_key, title) values
  ('00000000-0000-0000-0000-0000000ad0e1', '00000000-0000-0000-0000-0000000ad001',
   '00000000-0000-0000-0000-0000000ad0a1', 'k1', 'spike');
-- other organizations' due deliveries must not get in the way of this test's claims
update private.alert_deliveries set next_attempt_at = now() + interval '1 day'
 where org_id <> '00000000-0000-0000-0000-0000000ad001' and status = 'pending';
update private.alert_deliveries set status = 'pending', lease_expires_at = null, next_attempt_at = now() + interval '1 day'
 where org_id <> '00000000-0000-0000-0000-0000000ad001' and status = 'sending';

create temp table c1 as select * from private.claim_alert_deliveries('w1', 10, '1 minute');
-- raising the event queued its delivery, and a worker claims it with the channel and the event
select results_eq($$ select attempt, kind, channel ->> 'type', event ->> 'title' from c1 $$,
                  $$ values (1, 'trigger', 'email', 'spike') $$, 'the raised event''s delivery is claimed');
-- a second worker finds nothing while the lease holds
select is_empty($$ select * from private.claim_alert_deliveries('w2', 10, '1 minute') $$, 'a leased delivery is not claimed twice');
-- a failed attempt backs off
select ok(private.finish_alert_delivery((select delivery_id from c1), 1, 'retry', 500, 'HTTP 500', '1 hour'),
          'the attempt is recorded');
select results_eq($$ select status, attempts, last_status_code, next_attempt_at > now() + interval '59 minutes'
                       from private.alert_deliveries where id = (select delivery_id from c1) $$,
                  $$ values ('pending', 1, 500, true) $$, 'it waits out its backoff');
-- a stale worker's late report is ignored
select ok(not private.finish_alert_delivery((select delivery_id from c1), 1, 'delivered', 200, null, null),
          'an attempt that is no longer current is ignored');
-- a lease that expired (its worker died) is claimed again; past max_attempts a failure is final
update private.alert_deliveries set status = 'sending', lease_expires_at = now() - interval '1 second', attempts = 7
 where id = (select delivery_id from c1);
create temp table c2 as select * from private.claim_alert_deliveries('w2', 10, '1 minute');
select is((select attempt from c2), 8, 'an expired lease is taken over');
select private.finish_alert_delivery((select delivery_id from c2), 8, 'retry', 503, 'HTTP 503', '1 second');
select results_eq($$ select status, last_error from private.alert_deliveries where id = (select delivery_id from c1) $$,
                  $$ values ('failed', 'HTTP 503') $$, 'after the last attempt it stays failed, with its error');
-- members with alerts.read see it; members of other organizations do not
select tests.create_user('ad_outsider');
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000ad002', 'other');
insert into public.organization_members values ('00000000-0000-0000-0000-0000000ad002', tests.uid('ad_outsider'), 'owner');
select tests.authenticate_as('ad_outsider');
select is_empty($$ select 1 from private.alert_deliveries where org_id = '00000000-0000-0000-0000-0000000ad001' $$,
                'other organizations see no deliveries');
select tests.clear_authentication();

select * from finish();
rollback;
