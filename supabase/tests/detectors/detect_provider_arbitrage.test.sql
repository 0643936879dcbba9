-- private.detect_provider_arbitrage: the same model listed cheaper by another routable provider; both
-- sides priced today for the scope's tokens. A cheaper price only at a reseller (not routable) is silent.
begin;
select plan(4);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000004', 'detect-arbitrage');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000004', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'arb-' || m.feature || g, m.provider, m.model, 4000, 400, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 300) g,
       (values ('fireworks', 'deepseek-v4-pro', 'reasoner'), ('anthropic', 'claude-haiku-4-5', 'haiku')) m (provider, model, feature)
 cross join lateral private.usage_cost(m.provider, m.model, now(), 4000, 400, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_provider_arbitrage(array['d1000000-0000-0000-0000-000000000004']::uuid[],
                                                (select p_now from clock));

-- a reseller lists claude-haiku-4-5 lower, but only routable providers are targets
select ok(exists (select from public.model_prices where model_id = 'claude-haiku-4-5' and provider_id = 'quicksilverpro'),
          'the pricing tables list a reseller for claude-haiku-4-5');
select results_eq($$ select scope_value, evidence ->> 'target_provider' from found $$,
                  $$ values ('reasoner', 'deepseek') $$, 'deepseek-v4-pro moves from fireworks to deepseek');
-- current and projected are both list prices today for the same tokens, scaled to 30 / 9.5
select is(round((select current_monthly_cost - projected_monthly_cost from found), 8),
          round(((select c.cost_usd from private.usage_cost('fireworks', 'deepseek-v4-pro', (select p_now from clock),
                                                            300 * 4000, 300 * 400, 0, 0, 0) c)
                 - (select c.cost_usd from private.usage_cost('deepseek', 'deepseek-v4-pro', (select p_now from clock),
                                                              300 * 4000, 300 * 400, 0, 0, 0) c)) * 30 / 9.5, 8),
          'savings are the difference of the two listed prices, scaled to a month');
-- the share threshold is a parameter: demanding the other provider cost under 1% silences it
update private.detector_parameters set value = 0.01 where category = 'provider_arbitrage' and name = 'max_cost_share';
select is_empty($$ select * from private.detect_provider_arbitrage(array['d1000000-0000-0000-0000-000000000004']::uuid[],
                                                                  (select p_now from clock)) $$,
                'a cost share above max_cost_share raises nothing');

select finish();
rollback;
