-- private.detect_model_version_optimization: a text model the registry marks superseded moves to its
-- successor when that costs less for the same tokens (savings: the tokens repriced, scaled to a month);
-- a current model, a successor that costs more and savings under the minimum raise nothing.
begin;
select plan(5);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000002', 'detect-versions');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000002', c.p_now - (g % 20) * interval '1 day' - interval '1 hour',
       'mvo-' || m.feature || g, m.provider, m.model, 1500, 300, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 300) g,
       (values ('openai', 'gpt-4-turbo', 'legacy'), ('openai', 'gpt-4o', 'current'),
               ('google', 'gemini-2.0-flash', 'flash')) m (provider, model, feature)
 cross join lateral private.usage_cost(m.provider, m.model, now(), 1500, 300, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_model_version_optimization(array['d1000000-0000-0000-0000-000000000002']::uuid[],
                                                        (select p_now from clock));

-- gpt-4-turbo's registry successor is gpt-4o; gemini-2.0-flash's (gemini-2.5-flash) costs more, so it is silent
select results_eq($$ select scope_value, key, evidence ->> 'target_model' from found $$,
                  $$ values ('legacy', 'gpt-4-turbo', 'gpt-4o') $$, 'only the superseded model with a cheaper successor');
-- savings: the recorded cost against the same tokens at gpt-4o, both over 19.5 days scaled to 30
select is(round((select current_monthly_cost - projected_monthly_cost from found), 8),
          round(((select sum(cost_usd) from public.usage_records
                   where org_id = 'd1000000-0000-0000-0000-000000000002' and feature = 'legacy')
                 - (select c.cost_usd from private.usage_cost('openai', 'gpt-4o', (select p_now from clock),
                                                              300 * 1500, 300 * 300, 0, 0, 0) c)) * 30 / 19.5, 8),
          'savings are the tokens repriced at the successor, scaled to a month');
select is((select evidence -> 'series' ->> ((select p_now from clock)::date::text) from found)::numeric,
          round((select sum(cost_usd) from public.usage_records
                  where org_id = 'd1000000-0000-0000-0000-000000000002' and feature = 'legacy'
                    and occurred_at >= (select date_trunc('day', p_now) from clock)), 6),
          'the evidence carries the daily cost series');
select is((select suggested_rule from found),
          '{"conditions": {"feature": "legacy", "model": "gpt-4-turbo"},
            "action": {"type": "route_to_model", "provider": "openai", "model": "gpt-4o"}}'::jsonb,
          'the rule moves the feature''s calls to the successor');

-- the minimum saving is a parameter
update private.detector_parameters set value = 1e9
 where category = 'model_version_optimization' and name = 'min_monthly_savings';
select is_empty($$ select * from private.detect_model_version_optimization(
                     array['d1000000-0000-0000-0000-000000000002']::uuid[], (select p_now from clock)) $$,
                'savings under min_monthly_savings raise nothing');

select finish();
rollback;
