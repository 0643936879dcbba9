-- private.evaluate_budgets raises one event per (budget rule, budget, period, threshold crossed), never
-- two however often it runs, queues a delivery per enabled channel, and resolves past periods' events.
begin;
select plan(6);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000ae001', 'alerts');
insert into public.alert_rules (id, org_id, name, type, channels) values
  ('00000000-0000-0000-0000-0000000ae0a1', '00000000-0000-0000-0000-0000000ae001', 'all', 'budget_threshold',
   '[{"id": "00000000-0000-0000-0000-0000000ae0c1", "type": "email", "to": ["a@example.com"]},
     {"id": "00000000-0000-0000-0000-0000000ae0c2", "type": "email", "to": ["b@example.com"], "disabled": true}]');
insert into public.budgets (id, org_id, name, amount, period, alert_thresholds)
values ('00000000-0000-0000-0000-0000000ae0b1', '00000000-0000-0000-0000-0000000ae001', 'cap', 10, 'daily', '{50,80,100}');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
values ('00000000-0000-0000-0000-0000000ae001', now(), 'spend', 'openai', 'gpt-4o', 8.5, true);

select private.evaluate_budgets();
select private.evaluate_budgets();
-- 85% of $10: the 50% and 80% thresholds, once each
select results_eq($$ select (details ->> 'threshold')::integer from public.alert_events
                      where org_id = '00000000-0000-0000-0000-0000000ae001' order by 1 $$,
                  $$ values (50), (80) $$, 'one event per threshold crossed, however often evaluated');
-- one delivery per event to the enabled channel only
select is((select count(*)::integer from private.alert_deliveries where org_id = '00000000-0000-0000-0000-0000000ae001'
             and channel_id = '00000000-0000-0000-0000-0000000ae0c1' and kind = 'trigger'), 2,
          'each event is queued for the enabled channel');
select is_empty($$ select 1 from private.alert_deliveries where channel_id = '00000000-0000-0000-0000-0000000ae0c2' $$,
                'a disabled channel gets nothing');
-- the status change is recorded once, for the broadcast
select results_eq($$ select status from private.budget_evaluations where budget_id = '00000000-0000-0000-0000-0000000ae0b1' $$,
                  $$ values ('warning') $$, 'the evaluated status is kept');
-- when the period is over, its events are resolved, and a resolve is queued for each delivered channel
update public.alert_events set details = jsonb_set(details, '{period_end}', to_jsonb(now() - interval '1 second'))
 where org_id = '00000000-0000-0000-0000-0000000ae001';
select private.evaluate_budgets();
select is_empty($$ select 1 from public.alert_events where org_id = '00000000-0000-0000-0000-0000000ae001'
                     and status <> 'resolved' $$, 'events of a past period are resolved');
select is((select count(*)::integer from private.alert_deliveries where org_id = '00000000-0000-0000-0000-0000000ae001'
             and kind = 'resolve'), 2, 'a resolve is queued per channel that was sent the trigger');

select * from finish();
rollback;
