-- business_outcome_attribution: an end user costing several times the median user per call and carrying
-- a large share of spend is found, with their cost above the median cost per call as the savings.
begin;
select plan(4);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2601', 'bo-a'),
                                                   ('00000000-0000-0000-0000-0000000d2602', 'bo-b');

-- a: six users of 100 calls over 10 days, five at $0.01 a call (u2 at $0.02), heavy at $0.10;
-- b: four users only, one of them heavy (under min_users: no typical user).
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, end_user_id, feature, cost_usd, priced)
select o.org, date_trunc('day', c.at, 'UTC') - (i % 10 + 1) * interval '1 day', o.org || u.name || i, 'openai',
       'gpt-4o', u.name, 'assistant', u.cpr, true
from clock c, generate_series(1, 100) i,
     (values ('u1', 0.01), ('u2', 0.02), ('u3', 0.01), ('u4', 0.01), ('u5', 0.01), ('heavy', 0.10)) u(name, cpr),
     (values ('00000000-0000-0000-0000-0000000d2601'::uuid), ('00000000-0000-0000-0000-0000000d2602')) o(org)
where o.org = '00000000-0000-0000-0000-0000000d2601' or u.name in ('u1', 'u2', 'u3', 'heavy');

create temporary table found on commit drop as
select r.* from clock c,
     private.detect_business_outcome_attribution('{00000000-0000-0000-0000-0000000d2601,00000000-0000-0000-0000-0000000d2602}', c.at) r;

select results_eq($$ select org_id, scope_type, scope_value from found $$,
                  $$ values ('00000000-0000-0000-0000-0000000d2601'::uuid, 'end_user', 'heavy') $$,
                  'the heavy user of the organization with enough users');
-- savings: 100 calls x ($0.10 - the median $0.01) per month over 10.5 days
select is(round(current_monthly_cost - projected_monthly_cost, 6), round(100 * 0.09 * 30 / 10.5, 6),
          'cost above the median user''s, per month') from found;
select is((evidence ->> 'median_cost_per_request')::numeric, 0.01, 'the median user''s cost per call') from found;
-- the suggested cap: the median cost of the user's calls per day of history
select is((suggested_rule -> 'action' ->> 'max_cost_per_day')::numeric, round(0.01 * 100 / 10.5, 4), 'a daily cap')
  from found;

select * from finish();
rollback;
