-- The query functions behind /costs, /dashboard/overview and /usage/timeseries run with the caller's
-- rights: a member gets their organization's exact sums, anybody else nothing; bad arguments are refused.
begin;
select plan(9);

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000f0a0a', 'queries-a'), ('00000000-0000-4000-8000-0000000f0a0b', 'queries-b');
select tests.create_user('qf_viewer_a'), tests.create_user('qf_owner_b');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000f0a0a', tests.uid('qf_viewer_a'), 'viewer'),
  ('00000000-0000-4000-8000-0000000f0a0b', tests.uid('qf_owner_b'), 'owner');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, feature, input_tokens, output_tokens,
                                  cost_usd, priced, latency_ms)
select '00000000-0000-4000-8000-0000000f0a0a', now() - g * interval '53 minutes', 'qf-' || g, 'openai',
       case when g % 2 = 0 then 'gpt-4o' else 'gpt-4o-mini' end, 'feature-' || g % 3, 10 * g, g,
       0.000000000001 * g + 0.5, true, 10 * g
from generate_series(1, 40) g;

create temp table expected as
  select model, count(*) as requests, sum(cost_usd) as cost from public.usage_records
  where org_id = '00000000-0000-4000-8000-0000000f0a0a' group by model;
grant select on expected to authenticated;

select tests.authenticate_as('qf_viewer_a');
-- the viewer's organization, to the last decimal
select results_eq(
  $$ select d ->> 'model', (d ->> 'total_requests')::bigint, (d ->> 'total_cost')::numeric
     from jsonb_array_elements(public.cost_breakdown((now() at time zone 'UTC')::date - 3, (now() at time zone 'UTC')::date,
                                                    array['model']) -> 'data') d order by 1 $$,
  $$ select model, requests, cost from expected order by 1 $$,
  'cost_breakdown by model equals the raw sums');
select is((public.cost_breakdown((now() at time zone 'UTC')::date - 3, (now() at time zone 'UTC')::date) -> 'meta' ->> 'currency'),
          'USD', 'meta carries the currency');
select is((public.dashboard_overview('00000000-0000-4000-8000-0000000f0a0a') ->> 'requests')::bigint,
          (select count(*) from public.usage_records where org_id = '00000000-0000-4000-8000-0000000f0a0a'
             and occurred_at >= date_trunc('month', now(), 'UTC')),
          'the overview counts the month-to-date requests');
select is((select sum((p ->> 'requests')::bigint) from jsonb_array_elements(public.usage_timeseries(
             date_trunc('hour', now(), 'UTC') - interval '48 hours', date_trunc('hour', now(), 'UTC') + interval '1 hour',
             'hour') -> 'data') p), 40::numeric, 'the timeseries holds every request of the window');
select throws_ok($$ select private.usage_summary(now() - interval '1 day', now(), 'total', array['colour']) $$,
                 '22023', null, 'an unknown dimension is refused');
select throws_ok($$ select private.usage_summary(timestamptz '2026-01-01 00:30+00', timestamptz '2026-01-02', 'hour') $$,
                 '22023', null, 'a range that does not fall on whole hours is refused');
select tests.clear_authentication();

-- another organization's owner: nothing, even when naming the organization
select tests.authenticate_as('qf_owner_b');
select is(jsonb_array_length(public.cost_breakdown((now() at time zone 'UTC')::date - 3, (now() at time zone 'UTC')::date,
                                                   array['model'], org => '00000000-0000-4000-8000-0000000f0a0a') -> 'data'),
          0, 'a member of another organization gets no rows');
select is((public.dashboard_overview('00000000-0000-4000-8000-0000000f0a0a') ->> 'requests')::bigint, 0::bigint,
          'nor an overview of it');
select tests.clear_authentication();

-- anon may not call them at all
select tests.become_anon();
select throws_ok($$ select public.cost_breakdown(current_date, current_date) $$, '42501', null,
                 'anon cannot call the query functions');
select tests.clear_authentication();

select * from finish();
rollback;
