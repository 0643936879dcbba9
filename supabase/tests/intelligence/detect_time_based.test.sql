-- time_based_optimization: a feature whose calls fall in two hours of the day on enough days is repriced
-- at the batch tier; traffic spread over the day, or a schedule seen on too few days, is not.
begin;
select plan(5);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2201', 'tb-a');

-- nightly: 20 calls a night between 02:00 and 04:00 UTC for 10 nights; daytime: 20 calls a day, one an
-- hour over 20 hours; weekly: a nightly job seen on 5 nights only.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2201', t.at, t.feature || '-' || t.n, 'openai', 'gpt-4o', 10000, 1000, t.feature,
       (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 10000, 1000, 0, 0, 0) u), true
from (
  select 'nightly' as feature, d * 100 + i as n,
         date_trunc('day', c.at, 'UTC') - d * interval '1 day' + interval '2 hours' + i * interval '6 minutes' as at
  from clock c, generate_series(1, 10) d, generate_series(0, 19) i
  union all
  select 'daytime', d * 100 + i, date_trunc('day', c.at, 'UTC') - d * interval '1 day' + i * interval '1 hour'
  from clock c, generate_series(1, 10) d, generate_series(0, 19) i
  union all
  select 'weekly', d * 100 + i, date_trunc('day', c.at, 'UTC') - d * interval '1 day' + interval '2 hours' + i * interval '6 minutes'
  from clock c, generate_series(1, 5) d, generate_series(0, 19) i
) t;

create temporary table found on commit drop as
select r.* from clock c, private.detect_time_based_optimization('{00000000-0000-0000-0000-0000000d2201}', c.at) r;

-- only the feature scheduled on ten nights
select results_eq($$ select scope_value from found $$, $$ values ('nightly') $$, 'the nightly feature only');
-- savings: the 200 calls' tokens at the batch tier's price instead of the standard one, per month
-- (10.5 days of history: the first call at 02:00 ten days back, the window ends at noon)
select is(round(current_monthly_cost - projected_monthly_cost, 6),
          round((200 * (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 10000, 1000, 0, 0, 0) u)
                 - (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 2000000, 200000, 0, 0, 0, 'batch') u))
                * 30 / 10.5, 6), 'standard minus batch price, per month')
  from found;
select ok(projected_monthly_cost > 0 and projected_monthly_cost < current_monthly_cost, 'the batch tier is cheaper')
  from found;
select is(evidence -> 'busiest_hours_utc', '[2, 3]'::jsonb, 'the busiest hours') from found;
select is(suggested_rule -> 'action' ->> 'service_tier', 'batch', 'the rule sends it to the batch tier') from found;

select * from finish();
rollback;
