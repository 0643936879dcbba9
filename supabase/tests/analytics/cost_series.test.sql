-- Costs by end user from raw rows (bounded), and series with a point for every bucket of every series.
begin;
select plan(8);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000c6001', 'cs'),
                                                   ('00000000-0000-0000-0000-0000000c6002', 'other');
select tests.create_user('cs_member');
insert into public.organization_members (org_id, user_id, role)
values ('00000000-0000-0000-0000-0000000c6001', tests.uid('cs_member'), 'member');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  end_user_id, team, cost_usd)
values ('00000000-0000-0000-0000-0000000c6001', date_trunc('hour', now()) - interval '3 hours', 'cs-1', 'openai', 'gpt-4o',
        100, 50, 'u-1', 'a', 0.5),
       ('00000000-0000-0000-0000-0000000c6001', date_trunc('hour', now()) - interval '3 hours', 'cs-2', 'openai', 'gpt-4o',
        100, 50, 'u-2', 'a', 0.25),
       ('00000000-0000-0000-0000-0000000c6001', date_trunc('hour', now()) - interval '1 hours', 'cs-3', 'openai', 'gpt-4o',
        100, 50, 'u-1', 'b', 0.125),
       ('00000000-0000-0000-0000-0000000c6002', date_trunc('hour', now()) - interval '1 hours', 'cs-4', 'openai', 'gpt-4o',
        100, 50, 'u-1', 'b', 100);

select tests.authenticate_as('cs_member');
-- per end user, dearest first, exact sums, the other organization's rows unseen (RLS)
select results_eq($$ select e ->> 'end_user_id', (e ->> 'total_cost')::numeric, (e ->> 'total_requests')::int
                     from jsonb_array_elements(public.cost_breakdown_raw(current_date - 1, current_date,
                                                                         '{end_user_id}') -> 'data') e $$,
                  $$ values ('u-1', 0.625::numeric, 2), ('u-2', 0.25, 1) $$, 'costs per end user from raw rows');
-- an end user as a filter, with another dimension
select results_eq($$ select e ->> 'team', (e ->> 'total_cost')::numeric
                     from jsonb_array_elements(public.cost_breakdown_raw(current_date - 1, current_date, '{team}',
                                                                         end_user_id => 'u-1') -> 'data') e $$,
                  $$ values ('a', 0.5::numeric), ('b', 0.125) $$, 'filtered to one end user, by team');
-- the range is bounded, and the error names the field
select throws_ok($$ select public.cost_breakdown_raw(current_date - 40, current_date, '{end_user_id}') $$, '22023',
                 'end_date: a breakdown by end user reads raw rows and holds at most 31 days', 'raw ranges are bounded');
select throws_ok($$ select public.cost_breakdown_raw(current_date, current_date, '{prompt}') $$, '22023', null,
                 'only known dimensions');

-- 24 hours are 24 points, whatever had usage
select is(jsonb_array_length(private.zero_filled(
            public.usage_timeseries(date_trunc('hour', now()) - interval '24 hours', date_trunc('hour', now()), 'hour'),
            'bucket', date_trunc('hour', now()) - interval '24 hours', date_trunc('hour', now()), interval '1 hour', '{}',
            '{"cost_usd": 0, "requests": 0}') -> 'data'), 24, 'one point per hour');
-- each series gets every bucket; the filled ones are zero
select results_eq($$ select p ->> 'team', count(*)::int, sum((p ->> 'cost_usd')::numeric)
                     from jsonb_array_elements(private.zero_filled(
                            public.usage_timeseries(date_trunc('hour', now()) - interval '4 hours', date_trunc('hour', now()),
                                                    'hour', 'team'),
                            'bucket', date_trunc('hour', now()) - interval '4 hours', date_trunc('hour', now()),
                            interval '1 hour', '{team}', '{"cost_usd": 0, "requests": 0}') -> 'data') p
                     group by 1 order by 1 $$,
                  $$ values ('a', 4, 0.75::numeric), ('b', 4, 0.125) $$, 'every series has every hour');
-- days are dates, as /costs writes them
select is(private.zero_filled(public.cost_breakdown(current_date - 2, current_date, '{}', 'day'), 'date',
                              (current_date - 2)::timestamp at time zone 'UTC',
                              (current_date + 1)::timestamp at time zone 'UTC', interval '1 day', '{}',
                              '{"total_cost": 0}') -> 'data' -> 0,
          jsonb_build_object('date', current_date - 2, 'total_cost', 0), 'an empty day is a zero point');
-- no usage at all still gives the whole series
select is(jsonb_array_length(private.zero_filled('{"data": []}', 'date', now() - interval '7 days', now(),
                                                 interval '1 day', '{}', '{"total_cost": 0}') -> 'data'),
          7, 'an empty answer is filled too');
select tests.clear_authentication();

select * from finish();
rollback;
