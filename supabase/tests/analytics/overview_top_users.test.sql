-- The overview's top end users come from the month's rollup leaders plus every user the pending deltas and
-- the raw tail touch: a user far down the rollup whom a late event or a fresh one lifts to the top is
-- there, with the exact sums, as in the raw rows.
begin;
select plan(4);

insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000f0b0a', 'overview-top');
select tests.create_user('ot_owner');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000f0b0a', tests.uid('ot_owner'), 'owner');
-- 30 users early this month, user-n spending n cents a call (ties broken by name at the cut)
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  cost_usd, priced, end_user_id)
select '00000000-0000-4000-8000-0000000f0b0a', date_trunc('month', now(), 'UTC') + g * interval '1 second',
       'ot-' || g, 'openai', 'gpt-4o-mini', 10, 1, (g % 30 + 1) * 0.01, true, 'user-' || (g % 30 + 1)
from generate_series(1, 300) g;
select is((private.refresh_usage_rollups(clock_timestamp(), null) ->> 'caught_up')::boolean, true,
          'the month so far is rolled up');

-- a late event below the watermark (a pending delta) lifts user-1, a fresh one past it (raw tail) user-2
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  cost_usd, priced, end_user_id) values
  ('00000000-0000-4000-8000-0000000f0b0a', date_trunc('month', now(), 'UTC') + interval '5 minutes', 'ot-late',
   'openai', 'gpt-4o-mini', 10, 1, 5.00, true, 'user-1'),
  ('00000000-0000-4000-8000-0000000f0b0a', clock_timestamp() + interval '1 second', 'ot-fresh',
   'openai', 'gpt-4o-mini', 10, 1, 4.00, true, 'user-2');
select ok((select count(*) from private.end_user_rollup_deltas
           where org_id = '00000000-0000-4000-8000-0000000f0b0a') > 0, 'the late event waits as a delta');

create temp table expected as
  select end_user_id, sum(cost_usd) as cost, count(*) as requests from public.usage_records
  where org_id = '00000000-0000-4000-8000-0000000f0b0a' group by 1 order by 2 desc, 1 limit 5;
grant select on expected to authenticated;

select tests.authenticate_as('ot_owner');
select results_eq(
  $$ select u ->> 'end_user_id', (u ->> 'cost_usd')::numeric, (u ->> 'requests')::bigint
     from jsonb_array_elements(public.dashboard_overview('00000000-0000-4000-8000-0000000f0b0a') -> 'top_users') u $$,
  $$ select end_user_id, cost, requests from expected order by cost desc, end_user_id $$,
  'the top five users equal the raw sums, rollup, delta and raw tail together');
select is((select e.end_user_id from private.end_user_summary(
             date_trunc('month', now(), 'UTC'), date_trunc('month', now(), 'UTC') + interval '1 month',
             '00000000-0000-4000-8000-0000000f0b0a', 1) e),
          'user-1', 'the user a late event lifted leads');
select tests.clear_authentication();

select * from finish();
rollback;
