-- Short history is said, not silent: the anomaly and recommendation lists carry what history they need
-- and how much each organization has; and cost per trace or session sums raw rows over a bounded range.
begin;
select plan(13);

insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000ab001', 'history-a'),
                                                   ('00000000-0000-4000-8000-0000000ab002', 'history-b');
select tests.create_user('hist_member');
insert into public.organization_members (org_id, user_id, role)
values ('00000000-0000-4000-8000-0000000ab001', tests.uid('hist_member'), 'member');

-- five hours of usage: two traces in one session, one call without either, and organization B's trace
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, cost_usd, priced,
                                  input_tokens, output_tokens, trace_id, session_id)
values ('00000000-0000-4000-8000-0000000ab001', now() - interval '5 hours', 'h1', 'openai', 'gpt-4o', 'success', 0.5, true, 100, 10, 't-1', 's-1'),
       ('00000000-0000-4000-8000-0000000ab001', now() - interval '4 hours', 'h2', 'openai', 'gpt-4o-2024-08-06', 'error', 0.25, true, 100, 0, 't-1', 's-1'),
       ('00000000-0000-4000-8000-0000000ab001', now() - interval '3 hours', 'h3', 'anthropic', 'claude-sonnet-4-5', 'success', 2, true, 100, 10, 't-2', 's-1'),
       ('00000000-0000-4000-8000-0000000ab001', now() - interval '2 hours', 'h4', 'openai', 'gpt-4o', 'success', 9, true, 100, 10, null, null),
       ('00000000-0000-4000-8000-0000000ab002', now() - interval '2 hours', 'h5', 'openai', 'gpt-4o', 'success', 7, true, 100, 10, 't-b', 's-b');

-- materialized, as the minute job would have: history is read from the rollups
select private.refresh_usage_rollups(now(), null) is not null as refreshed;

select tests.authenticate_as('hist_member');
-- an empty anomaly list says why: what detection needs and how much there is
select is(public.anomaly_list() -> 'data', '[]'::jsonb, 'no anomalies yet');
select is((public.anomaly_list() #>> '{meta,needs,hourly_series_hours}')::int, 192,
          'the list says hourly detection needs 192 hours (every weekday seen once, with a day before it)');
-- (the rollups keep hours: the first call counts from the start of its hour)
select ok(((public.anomaly_list() #> '{meta,history,0}') ->> 'history_hours')::numeric between 5 and 6,
          'and the organization has 5 hours');
select is((public.anomaly_list() #> '{meta,history,0,anomalies}') ->> 'hourly_ready', 'false', 'so hourly detection has not started');
select is((public.recommendation_list() #>> '{meta,needs,window_days}')::int, 30, 'recommendations say their window');
select is(jsonb_array_length(public.recommendation_list() #> '{meta,history}'), 1,
          'history covers the caller''s organizations only');

-- cost per trace and per session, most expensive first, from the caller's organization only
select results_eq(
  $$ select e ->> 'trace_id', (e ->> 'requests')::int, (e ->> 'errors')::int, (e ->> 'cost_usd')::numeric, e -> 'models'
       from jsonb_array_elements(public.trace_costs(now() - interval '1 day', now()) -> 'data') e $$,
  $$ values ('t-2', 1, 0, 2::numeric, '["claude-sonnet-4-5"]'::jsonb), ('t-1', 2, 1, 0.75, '["gpt-4o"]'::jsonb) $$,
  'cost per trace, with the canonical models it used');
select results_eq(
  $$ select e ->> 'session_id', (e ->> 'requests')::int, (e ->> 'cost_usd')::numeric, (e ->> 'traces')::int
       from jsonb_array_elements(public.trace_costs(now() - interval '1 day', now(), 'session') -> 'data') e $$,
  $$ values ('s-1', 3, 2.75::numeric, 2) $$,
  'cost per session, with how many traces it spans');
select is(jsonb_array_length(public.trace_costs(now() - interval '1 day', now(), trace_id => 't-1') -> 'data'), 1,
          'one trace by id');
select throws_ok($$ select public.trace_costs(now() - interval '40 days', now()) $$, '22023',
                 'end: costs per trace or session read raw rows; the range holds at most 31 days',
                 'the range is bounded');
select tests.clear_authentication();

-- a week later (173 hours) hourly detection still waits: some weekday has not been seen after a day
update public.usage_records set occurred_at = occurred_at - interval '7 days'
 where org_id = '00000000-0000-4000-8000-0000000ab001';
select is(public.usage_history('00000000-0000-4000-8000-0000000ab001') #>> '{0,anomalies,hourly_ready}', 'false',
          'after a week, hourly detection has not started');
-- nine days later the same organization's hourly detection is ready, its daily one is not
update public.usage_records set occurred_at = occurred_at - interval '2 days'
 where org_id = '00000000-0000-4000-8000-0000000ab001';
select is(public.usage_history('00000000-0000-4000-8000-0000000ab001') #>> '{0,anomalies,hourly_ready}', 'true',
          'after 192 hours, hourly detection is ready');
select is(public.usage_history('00000000-0000-4000-8000-0000000ab001') #>> '{0,anomalies,daily_ready}', 'false',
          'daily detection still needs 21 days');

select * from finish();
rollback;
