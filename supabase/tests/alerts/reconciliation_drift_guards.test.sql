-- Guards around the reconciliation drift rules: a condition the evaluation could not read is refused when
-- written (also straight through SQL as a member), a bad rule already stored is skipped while the others
-- evaluate, and a window without reconciled days leaves an open event open.
begin;
select plan(16);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-0000000dd001', 'guard a'), ('00000000-0000-0000-0000-0000000dd002', 'guard b');
select tests.create_user(r) from unnest(array['dg_admin', 'dg_member']) r;
insert into public.organization_members values
  ('00000000-0000-0000-0000-0000000dd001', tests.uid('dg_admin'), 'admin'),
  ('00000000-0000-0000-0000-0000000dd001', tests.uid('dg_member'), 'member');
insert into private.reconciliation_daily (org_id, day, provider, canonical_model, tracked_cost_usd, billed_cost_usd,
                                          gap_usd)
values ('00000000-0000-0000-0000-0000000dd001', current_date - 2, 'openai', 'gpt-4o', 80, 100, 20),
       ('00000000-0000-0000-0000-0000000dd002', current_date - 2, 'openai', 'gpt-4o', 80, 100, 20);
insert into private.reconciliation_causes (org_id, day, provider, canonical_model, cause, amount_usd) values
  ('00000000-0000-0000-0000-0000000dd001', current_date - 2, 'openai', 'gpt-4o', 'untracked_traffic', 20),
  ('00000000-0000-0000-0000-0000000dd002', current_date - 2, 'openai', 'gpt-4o', 'untracked_traffic', 20);

-- an admin writing rules straight through SQL
select tests.authenticate_as('dg_admin');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '{"severity": "loud"}') $$,
  '22023', 'condition.severity: must be info, warning or critical', 'an unknown severity is refused');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '{"window_days": "abc"}') $$,
  '22023', 'condition.window_days: must be a whole number from 1 to 400', 'a window that is not a number is refused');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '{"window_days": 2.5}') $$,
  '22023', null, 'a fractional window is refused');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '{"window_days": 401}') $$,
  '22023', null, 'a window past 400 days is refused');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '{"threshold_pct": "5"}') $$,
  '22023', 'condition.threshold_pct: must be a number greater than 0 and at most 1000', 'a quoted threshold is refused');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '{"causes": ["weather"]}') $$,
  '22023', 'condition.causes: must be a list of 1 to 10 known causes', 'an unknown cause is refused');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'x', 'reconciliation_drift', '[]') $$,
  '22023', 'condition: must be an object', 'a condition that is not an object is refused');
select lives_ok($$ insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd0a1', '00000000-0000-0000-0000-0000000dd001', 'drift a', 'reconciliation_drift',
   '{"threshold_pct": 5, "min_gap_usd": 1, "window_days": 7, "provider": null, "causes": ["untracked_traffic"],
     "severity": "critical"}') $$, 'a readable condition is accepted');
select throws_ok($$ update public.alert_rules set condition = '{"min_gap_usd": -1}'
                    where id = '00000000-0000-0000-0000-0000000dd0a1' $$,
  '22023', 'condition.min_gap_usd: must be a number of at least 0', 'and checked again on update');
select lives_ok($$ insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd001', 'spike', 'spend_spike', '{"factor": 3}') $$,
  'other rule types are not the check''s business');
select tests.clear_authentication();

-- a bad rule written before the check (planted past the trigger) is skipped; the others evaluate
alter table public.alert_rules disable trigger check_condition;
insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd0b1', '00000000-0000-0000-0000-0000000dd001', 'loud', 'reconciliation_drift',
   '{"severity": "loud"}'),
  ('00000000-0000-0000-0000-0000000dd0b2', '00000000-0000-0000-0000-0000000dd001', 'abc', 'reconciliation_drift',
   '{"window_days": "abc"}');
alter table public.alert_rules enable trigger check_condition;
insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000dd0a2', '00000000-0000-0000-0000-0000000dd002', 'drift b', 'reconciliation_drift',
   '{"threshold_pct": 5}');
create temp table run1 as select private.evaluate_reconciliation_alerts() as r;
select is((select r ->> 'raised' from run1), '2', 'the two good rules raise, in both organizations');
select is((select array_agg(f ->> 'rule_id' order by f ->> 'rule_id') from run1, jsonb_array_elements(r -> 'failed') f),
          array['00000000-0000-0000-0000-0000000dd0b1', '00000000-0000-0000-0000-0000000dd0b2'],
          'the two bad rules are skipped and named');
select is((select severity from public.alert_events where rule_id = '00000000-0000-0000-0000-0000000dd0a1'), 'critical',
          'the good rule''s event carries its severity');
delete from public.alert_rules where id in ('00000000-0000-0000-0000-0000000dd0b1', '00000000-0000-0000-0000-0000000dd0b2');

-- no reconciled day in the window (the reports stopped): the open event stays open
delete from private.reconciliation_causes where org_id = '00000000-0000-0000-0000-0000000dd001';
delete from private.reconciliation_daily where org_id = '00000000-0000-0000-0000-0000000dd001';
select is(private.evaluate_reconciliation_alerts() ->> 'resolved', '0', 'a window without data resolves nothing');
select is((select status from public.alert_events where rule_id = '00000000-0000-0000-0000-0000000dd0a1'), 'open',
          'the drift event stays open while the data is stale');
-- the data comes back and agrees: now it resolves
insert into private.reconciliation_daily (org_id, day, provider, canonical_model, tracked_cost_usd, billed_cost_usd,
                                          gap_usd)
values ('00000000-0000-0000-0000-0000000dd001', current_date - 1, 'openai', 'gpt-4o', 100, 100, 0);
select is(private.evaluate_reconciliation_alerts() ->> 'resolved', '1', 'fresh days without a gap resolve it');

select * from finish();
rollback;
