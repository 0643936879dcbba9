-- Who reads a reconciliation and who may act on it: members of the organization (usage.read) through the
-- tables, the report function and the analytics view; nobody else; only price writers re-price. And the
-- drift rule: raised once while the gap passes its threshold, resolved when it closes.
begin;
select plan(11);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-0000000cd001', 'recon a'), ('00000000-0000-0000-0000-0000000cd002', 'recon b');
select tests.create_user(r) from unnest(array['rc_admin', 'rc_member', 'rc_other']) r;
insert into public.organization_members values
  ('00000000-0000-0000-0000-0000000cd001', tests.uid('rc_admin'), 'admin'),
  ('00000000-0000-0000-0000-0000000cd001', tests.uid('rc_member'), 'member'),
  ('00000000-0000-0000-0000-0000000cd002', tests.uid('rc_other'), 'owner');
insert into private.reconciliation_daily (org_id, day, provider, canonical_model, tracked_cost_usd, billed_cost_usd,
                                          gap_usd)
values ('00000000-0000-0000-0000-0000000cd001', current_date - 2, 'openai', 'gpt-4o', 90, 100, 10),
       ('00000000-0000-0000-0000-0000000cd002', current_date - 2, 'openai', 'gpt-4o', 50, 50, 0);
insert into private.reconciliation_causes (org_id, day, provider, canonical_model, cause, amount_usd) values
  ('00000000-0000-0000-0000-0000000cd001', current_date - 2, 'openai', 'gpt-4o', 'untracked_traffic', 7),
  ('00000000-0000-0000-0000-0000000cd001', current_date - 2, 'openai', 'gpt-4o', 'price_change', 3);

select tests.authenticate_as('rc_member');
-- a member reads the organization's rows, by table, report and view
select results_eq($$ select org_id from private.reconciliation_daily $$,
                  $$ values ('00000000-0000-0000-0000-0000000cd001'::uuid) $$, 'a member reads only its organization');
select is((public.reconciliation_report(null, current_date - 7, current_date) #>> '{meta,totals,gap}')::numeric, 10::numeric,
          'the report sums the readable gap');
select is((select sum(amount_usd) from analytics.reconciliation_daily), 10::numeric, 'the view, by cause');
-- and may not re-price
select throws_ok($$ select public.reprice_from_bill('00000000-0000-0000-0000-0000000cd001', 'openai', 'gpt-4o') $$,
                 '42501', null, 'members do not set prices');
select tests.clear_authentication();

select tests.authenticate_as('rc_other');
-- another organization's owner sees none of it, even when asking for it by id
select is_empty($$ select 1 from private.reconciliation_causes where org_id = '00000000-0000-0000-0000-0000000cd001' $$,
                'no cross-organization reads');
select is(public.reconciliation_report('00000000-0000-0000-0000-0000000cd001', current_date - 7, current_date) -> 'data',
          '[]'::jsonb, 'the report of another organization is empty');
select tests.clear_authentication();

select tests.become_anon();
select throws_ok($$ select 1 from private.reconciliation_daily $$, '42501', null, 'anonymous callers read nothing');
select tests.clear_authentication();

-- the drift rule fires once at 10% of the bill, and resolves when the gap is gone
insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000cd0a1', '00000000-0000-0000-0000-0000000cd001', 'drift', 'reconciliation_drift',
   '{"threshold_pct": 5, "min_gap_usd": 1, "window_days": 7}');
select is(private.evaluate_reconciliation_alerts() ->> 'raised', '1', 'a 10% gap raises the drift alert');
select is(private.evaluate_reconciliation_alerts() ->> 'raised', '0', 'once per episode');
-- a rule on some causes only measures their share of the gap
insert into public.alert_rules (id, org_id, name, type, condition, enabled) values
  ('00000000-0000-0000-0000-0000000cd0a2', '00000000-0000-0000-0000-0000000cd001', 'price drift', 'reconciliation_drift',
   '{"causes": ["price_change"]}', false);
select is((select d.gap_usd from public.alert_rules r, private.reconciliation_drift(r) d
            where r.id = '00000000-0000-0000-0000-0000000cd0a2'), 3::numeric, 'a rule on one cause measures its share');
delete from private.reconciliation_causes where org_id = '00000000-0000-0000-0000-0000000cd001';
update private.reconciliation_daily set tracked_cost_usd = 100, gap_usd = 0
 where org_id = '00000000-0000-0000-0000-0000000cd001';
select is(private.evaluate_reconciliation_alerts() ->> 'resolved', '1', 'resolved when tracked and billed agree');
select * from finish();
rollback;
