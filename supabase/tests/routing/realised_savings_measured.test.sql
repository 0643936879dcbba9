-- Realised savings of applied recommendations: one whose routing rule routed calls is measured on those
-- calls (treatment arm only, against the asked model's price); one without routed calls keeps the cost per
-- request against its baseline; open recommendations and other organizations are left alone.
begin;
select plan(8);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000d001', 'rs1'),
                                                   ('00000000-0000-0000-0000-00000000d002', 'rs2');
-- Applied two days ago: a routing one with a rule, a feature one with a baseline; and an open one.
insert into public.recommendations (id, org_id, category, scope_type, scope_value, fingerprint, title, status,
                                    applied_at, baseline) values
  ('00000000-0000-0000-0000-00000000e001', '00000000-0000-0000-0000-00000000d001', 'task_aware_routing',
   'feature', 'faq', 'r1', 'route faq', 'applied', now() - interval '2 days', '{"cost_per_request": 0.0075}'),
  ('00000000-0000-0000-0000-00000000e002', '00000000-0000-0000-0000-00000000d001', 'prompt_compression',
   'feature', 'search', 'r2', 'compress search', 'applied', now() - interval '2 days', '{"cost_per_request": 0.01}'),
  ('00000000-0000-0000-0000-00000000e003', '00000000-0000-0000-0000-00000000d001', 'prompt_compression',
   'feature', 'other', 'r3', 'still open', 'open', null, null),
  ('00000000-0000-0000-0000-00000000e004', '00000000-0000-0000-0000-00000000d002', 'task_aware_routing',
   'feature', 'faq', 'r4', 'other org', 'applied', now() - interval '2 days', '{"cost_per_request": 0.0075}');
insert into public.routing_rules (id, org_id, name, priority, conditions, action, traffic_share, enabled,
                                  recommendation_id) values
  ('00000000-0000-0000-0000-00000000f001', '00000000-0000-0000-0000-00000000d001', 'faq to mini', 10,
   '{"feature": "faq"}', '{"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"}', 0.5, true,
   '00000000-0000-0000-0000-00000000e001');

-- 30 treatment calls (gpt-4o asked, gpt-4o-mini used, saving 0.00705 each) and 10 control calls, an hour ago.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, feature, input_tokens,
                                  output_tokens, cost_usd, priced, routed_from_model, metadata)
select '00000000-0000-0000-0000-00000000d001', now() - interval '1 hour', 'rs-' || i, 'openai',
       case when i <= 30 then 'gpt-4o-mini' else 'gpt-4o' end, 'faq', 1000, 500,
       case when i <= 30 then 0.00045 else 0.0075 end, true, case when i <= 30 then 'gpt-4o' end,
       jsonb_build_object('tokentra', jsonb_build_object('routing_rule_id', '00000000-0000-0000-0000-00000000f001',
                                                         'routing_arm', case when i <= 30 then 'treatment' else 'control' end,
                                                         'routed_from_provider', 'openai'))
  from generate_series(1, 40) i;
-- The feature one: 10 calls at 0.004 against a 0.01 baseline.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, feature, input_tokens,
                                  output_tokens, cost_usd, priced)
select '00000000-0000-0000-0000-00000000d001', now() - interval '1 hour', 'rs-search-' || i, 'openai', 'gpt-4o',
       'search', 100, 50, 0.004, true
  from generate_series(1, 10) i;
select private.refresh_usage_rollups();

select is(private.measure_realised_savings('00000000-0000-0000-0000-00000000d001'), 3,
          'both applied recommendations measured, the routed one twice (baseline, then its routed calls)');
select is((select realised_method from public.recommendations where id = '00000000-0000-0000-0000-00000000e001'),
          'routed_calls', 'a recommendation whose rule routed calls is measured on those calls');
-- counterfactual: 30 calls of 1000 in / 500 out on gpt-4o at today's price, against 30 x 0.00045 paid
select is((select realised_monthly_savings from public.recommendations where id = '00000000-0000-0000-0000-00000000e001'),
          (select round(sum(s.savings_usd) * 30 * 86400 / extract(epoch from interval '2 days'), 4)
             from private.routing_savings('00000000-0000-0000-0000-00000000d001', now() - interval '3 days') s
            where s.routing_arm = 'treatment'),
          'its monthly figure is the treatment calls'' savings scaled to a month');
select ok((select realised_monthly_savings from public.recommendations where id = '00000000-0000-0000-0000-00000000e001') > 0,
          'routing to the cheaper model saved money');
select is((select realised_method from public.recommendations where id = '00000000-0000-0000-0000-00000000e002'),
          'cost_per_request', 'a recommendation without routed calls keeps the baseline method');
select is((select realised_monthly_savings from public.recommendations where id = '00000000-0000-0000-0000-00000000e002'),
          round((0.01 * 10 - 0.04) * 30 * 86400 / extract(epoch from interval '2 days'), 4),
          'baseline method: (baseline cost per request x requests - cost) scaled to a month');
select is((select realised_monthly_savings from public.recommendations where id = '00000000-0000-0000-0000-00000000e003'),
          null, 'an open recommendation is not measured');
select is((select realised_method from public.recommendations where id = '00000000-0000-0000-0000-00000000e004'),
          null, 'another organization''s recommendation is untouched');

select * from finish();
rollback;
