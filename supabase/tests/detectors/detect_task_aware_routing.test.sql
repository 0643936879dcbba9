-- private.detect_task_aware_routing: budget-tier tasks on a larger model are routed to the provider's
-- budget model, with the same tokens repriced there and scaled to a month; other tasks, calls already
-- on the budget model and a cost share above the threshold raise nothing.
begin;
select plan(6);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000001', 'detect-routing');
-- ten days of history (the first call at 11:00 nine days back: 9.5 days of window)
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  task_type, feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000001', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'tar-' || g, 'openai', m.model, 1000 + g, 200, m.task_type, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 200) g,
       (values ('gpt-4o', 'classification', 'classify'), ('gpt-4o', 'code_generation', 'coder'),
               ('gpt-4o-mini', 'classification', 'cheap')) m (model, task_type, feature)
 cross join lateral private.usage_cost('openai', m.model, now(), 1000 + g, 200, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_task_aware_routing(array['d1000000-0000-0000-0000-000000000001']::uuid[],
                                                (select p_now from clock));

-- one finding: the budget task on the large model, not the coding task nor the calls already on the budget model
select results_eq($$ select scope_value, key from found $$, $$ values ('classify', 'classification:gpt-4o') $$,
                  'only classification on gpt-4o is a routing candidate');
-- current: the calls' recorded cost; projected: their tokens at gpt-4o-mini's price; both times 30 / 9.5 days
select is(round((select current_monthly_cost from found), 8),
          round((select sum(cost_usd) from public.usage_records
                  where org_id = 'd1000000-0000-0000-0000-000000000001' and feature = 'classify') * 30 / 9.5, 8),
          'current cost is the recorded cost scaled to a month');
select is(round((select projected_monthly_cost from found), 8),
          round((select c.cost_usd from private.usage_cost('openai', 'gpt-4o-mini', (select p_now from clock),
                   (select sum(input_tokens) from public.usage_records
                     where org_id = 'd1000000-0000-0000-0000-000000000001' and feature = 'classify')::bigint,
                   200 * 200, 0, 0, 0) c) * 30 / 9.5, 8),
          'projected cost is the same tokens at the budget model''s price');
-- the rule routes to the budget model; five most recent calls are the samples
select is((select suggested_rule -> 'action' ->> 'model' from found), 'gpt-4o-mini', 'the rule routes to gpt-4o-mini');
select is((select jsonb_array_length(evidence -> 'sample_request_ids') from found), 5, 'five sample requests');

-- the threshold is a parameter: demanding the budget model cost at most 1% silences the finding
update private.detector_parameters set value = 0.01 where category = 'task_aware_routing' and name = 'max_cost_share';
select is_empty($$ select * from private.detect_task_aware_routing(array['d1000000-0000-0000-0000-000000000001']::uuid[],
                                                                  (select p_now from clock)) $$,
                'a cost share above max_cost_share raises nothing');

select finish();
rollback;
