-- private.detect_rate_limit_optimization: a feature whose rate-limited calls reach the share threshold and
-- were billed; savings are their recorded cost scaled to a month; the suggested rate is the busiest hour's.
begin;
select plan(4);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000005', 'detect-rates');
-- feature bulk: every tenth call refused with 429; feature calm: one in a hundred
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  status, is_rate_limited, feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000005', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'rl-' || m.feature || g, 'openai', 'gpt-4o', 3000, 200,
       case when g % m.every = 0 then 'rate_limited' else 'success' end, g % m.every = 0, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 1000) g, (values ('bulk', 10), ('calm', 100)) m (feature, every)
 cross join lateral private.usage_cost('openai', 'gpt-4o', now(), 3000, 200, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_rate_limit_optimization(array['d1000000-0000-0000-0000-000000000005']::uuid[],
                                                     (select p_now from clock));

select results_eq($$ select scope_value, (evidence ->> 'rate_limited_share')::numeric from found $$,
                  $$ values ('bulk', 0.1) $$, 'the feature with 10% rate-limited calls; 1% is under the threshold');
select is(round((select current_monthly_cost - projected_monthly_cost from found), 8),
          round((select sum(cost_usd) from public.usage_records
                  where org_id = 'd1000000-0000-0000-0000-000000000005' and feature = 'bulk'
                    and status = 'rate_limited') * 30 / 9.5, 8),
          'savings are the rate-limited calls'' cost scaled to a month');
-- all 1000 calls ran at 11:00 UTC: that hour's average over 9.5 days, per minute, rounded up
select is((select (suggested_rule -> 'action' ->> 'requests_per_minute')::int from found), ceil(1000 / 9.5 / 60)::int,
          'the suggested rate is the busiest hour''s average per minute');
update private.detector_parameters set value = 0.2
 where category = 'rate_limit_optimization' and name = 'min_rate_limited_share';
select is_empty($$ select * from private.detect_rate_limit_optimization(
                     array['d1000000-0000-0000-0000-000000000005']::uuid[], (select p_now from clock)) $$,
                'a share under min_rate_limited_share raises nothing');

select finish();
rollback;
