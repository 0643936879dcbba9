-- A metric alert rule the evaluation cannot read (written straight through SQL, past the API's checks) is
-- skipped and named; the other organizations' rules still evaluate.
begin;
select plan(4);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-0000000df001', 'metric a'), ('00000000-0000-0000-0000-0000000df002', 'metric b');
select tests.create_user('mr_admin');
insert into public.organization_members values
  ('00000000-0000-0000-0000-0000000df001', tests.uid('mr_admin'), 'admin');

select tests.authenticate_as('mr_admin');
select lives_ok($$ insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000df0b1', '00000000-0000-0000-0000-0000000df001', 'bad spike', 'spend_spike',
   '{"min_spend_usd": "abc", "factor": "ten"}') $$, 'an admin can write such a rule through SQL');
select tests.clear_authentication();

-- organization b's latency rule has an open event and no traffic: it resolves
insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000df0a1', '00000000-0000-0000-0000-0000000df002', 'slow', 'latency', '{}');
insert into public.alert_events (org_id, rule_id, dedup_key, title) values
  ('00000000-0000-0000-0000-0000000df002', '00000000-0000-0000-0000-0000000df0a1', 'latency:test', 'slow');

create temp table run1 as select private.evaluate_alert_rules() as r;
select is((select jsonb_path_query_array(r, '$.failed[*].rule_id') from run1),
          '["00000000-0000-0000-0000-0000000df0b1"]'::jsonb, 'the unreadable rule is skipped and named');
select ok((select r #>> '{failed,0,sqlstate}' = '22P02' from run1), 'with the error it met');
select is((select status from public.alert_events where rule_id = '00000000-0000-0000-0000-0000000df0a1'), 'resolved',
          'the other organization''s rule still evaluated');

select * from finish();
rollback;
