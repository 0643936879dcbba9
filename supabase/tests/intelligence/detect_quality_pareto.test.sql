-- quality_cost_pareto: a feature's model that a cheaper model serves at the same scored quality (within
-- the tolerance at the upper one-sided bound) is moved there, its tokens repriced at the cheaper model;
-- a cheaper model that scores clearly worse, or too few scored calls, raise nothing.
begin;
select plan(6);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2301', 'qp-a');

-- answers: 100 calls on gpt-4o and 100 on gpt-4o-mini over 10 days, every call scored, the same quality
-- on both (alternating 0.80 / 0.90); worse: the same, but gpt-4o-mini's scores 0.2 lower.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2301',
       date_trunc('day', c.at, 'UTC') - (i % 10 + 1) * interval '1 day' + interval '5 hours',
       f.feature || '-' || m.model || '-' || i, 'openai', m.model, 2000, 300, f.feature,
       (select u.cost_usd from private.usage_cost('openai', m.model, now(), 2000, 300, 0, 0, 0) u), true
from clock c, generate_series(1, 100) i, (values ('gpt-4o'), ('gpt-4o-mini')) m(model),
     (values ('answers'), ('worse')) f(feature);
insert into private.usage_feedback (org_id, request_id, score)
select org_id, request_id,
       case when i % 2 = 0 then 0.8 else 0.9 end - case when feature = 'worse' and model = 'gpt-4o-mini' then 0.2 else 0 end
from (select r.*, row_number() over (partition by r.feature, r.model order by r.request_id) as i
      from public.usage_records r where r.org_id = '00000000-0000-0000-0000-0000000d2301') r;

create temporary table found on commit drop as
select r.* from clock c, private.detect_quality_cost_pareto('{00000000-0000-0000-0000-0000000d2301}', c.at) r;

-- the expensive model of the feature whose cheap model is as good, nothing else
select results_eq($$ select scope_value, key, evidence ->> 'target_model' from found $$,
                  $$ values ('answers', 'gpt-4o', 'gpt-4o-mini') $$, 'gpt-4o to gpt-4o-mini for answers only');
-- savings: gpt-4o's 100 calls at its price minus the same tokens at gpt-4o-mini's, per month (10.5 days)
select is(round(current_monthly_cost - projected_monthly_cost, 6),
          round(((select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 200000, 30000, 0, 0, 0) u)
                 - (select u.cost_usd from private.usage_cost('openai', 'gpt-4o-mini', now(), 200000, 30000, 0, 0, 0) u))
                * 30 / 10.5, 6), 'repriced at the cheaper model, per month')
  from found;
-- the bound: the drop (0) plus 1.645 standard errors of two samples with spread ~0.05, under 0.02
select ok((evidence ->> 'quality_drop_upper_95')::numeric between 0.01 and 0.02, 'the upper bound is in the evidence')
  from found;
-- the frontier: the cheap model is on it, the expensive one is not
select results_eq($$ select p ->> 'model', (p ->> 'on_frontier')::boolean from found, jsonb_array_elements(evidence -> 'frontier') p $$,
                  $$ values ('gpt-4o-mini', true), ('gpt-4o', false) $$, 'frontier points, cheapest first');
select is(jsonb_array_length(evidence -> 'sample_request_ids'), 5, 'five scored sample calls') from found;

-- a wider tolerance is a parameter away: at 0.25 the worse feature moves too
update private.detector_parameters set value = 0.25 where category = 'quality_cost_pareto' and name = 'quality_tolerance';
select results_eq($$ select scope_value from clock c,
                      private.detect_quality_cost_pareto('{00000000-0000-0000-0000-0000000d2301}', c.at) order by 1 $$,
                  $$ values ('answers'), ('worse') $$, 'the tolerance decides');

select * from finish();
rollback;
