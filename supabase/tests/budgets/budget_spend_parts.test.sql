-- Budget spend adds the rollups, their pending deltas and the raw rows past the watermark, cost only: the
-- same sum as the analytics views it used to read, over whole days and whole hours, per scope.
begin;
select plan(6);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000b5e01', 'spend parts');
insert into public.budgets (id, org_id, name, amount, period, hard_limit)
values ('00000000-0000-0000-0000-0000000b5eb1', '00000000-0000-0000-0000-0000000b5e01', 'org', 100, 'monthly', true);

-- folded: rows of two days ago, then a refresh moves the watermark past them
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, cost_usd, priced)
select '00000000-0000-0000-0000-0000000b5e01', date_trunc('day', now()) - interval '2 days' + g * interval '37 minutes',
       'folded-' || g, 'openai', 'gpt-4o', case when g % 3 = 0 then 'search' else 'ads' end, 0.01 * g, true
  from generate_series(1, 30) g;
select ok(private.refresh_usage_rollups(now() - interval '1 hour', null) is not null, 'rollups refreshed');
-- pending: a late row behind the watermark becomes a delta
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, cost_usd, priced)
values ('00000000-0000-0000-0000-0000000b5e01', date_trunc('day', now()) - interval '2 days' + interval '5 hours',
        'late', 'openai', 'gpt-4o', 'search', 0.5, true);
-- unfolded: rows past the watermark
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, cost_usd, priced)
select '00000000-0000-0000-0000-0000000b5e01', now() - interval '50 minutes' + g * interval '1 minute',
       'fresh-' || g, 'openai', 'gpt-4o', case when g % 2 = 0 then 'search' else 'ads' end, 0.02 * g, true
  from generate_series(1, 40) g;

-- a team budget, once the team has been seen in usage
insert into public.budgets (id, org_id, name, amount, period, hard_limit, scope_type, scope_id)
values ('00000000-0000-0000-0000-0000000b5eb2', '00000000-0000-0000-0000-0000000b5e01', 'team', 100, 'monthly',
        true, 'team', 'search');

select ok((select count(*) from private.usage_rollup_deltas
            where org_id = '00000000-0000-0000-0000-0000000b5e01') > 0, 'a delta is pending');

select is(private.budget_spend(b, date_trunc('day', now()) - interval '3 days', date_trunc('day', now()) + interval '1 day'),
          (select sum(cost_usd) from analytics.usage_daily
            where org_id = b.org_id and bucket >= date_trunc('day', now()) - interval '3 days'),
          'whole days: the daily view''s sum')
  from public.budgets b where b.id = '00000000-0000-0000-0000-0000000b5eb1';
select is(private.budget_spend(b, date_trunc('day', now()) - interval '3 days', date_trunc('day', now()) + interval '1 day'),
          (select sum(cost_usd) from public.usage_records
            where org_id = b.org_id and team = 'search'),
          'whole days, one team: the sum of its rows')
  from public.budgets b where b.id = '00000000-0000-0000-0000-0000000b5eb2';
select is(private.budget_spend(b, date_trunc('hour', now()) - interval '49 hours', date_trunc('hour', now()) + interval '1 hour'),
          (select sum(cost_usd) from analytics.usage_hourly
            where org_id = b.org_id and bucket >= date_trunc('hour', now()) - interval '49 hours'),
          'whole hours across days: the hourly and daily views'' sum')
  from public.budgets b where b.id = '00000000-0000-0000-0000-0000000b5eb1';
select is(private.budget_spend(b, now() - interval '2 days 7 minutes', now() - interval '13 minutes'),
          (select sum(cost_usd) from public.usage_records
            where org_id = b.org_id and occurred_at >= now() - interval '2 days 7 minutes'
              and occurred_at < now() - interval '13 minutes'),
          'ragged edges: the raw rows at both ends')
  from public.budgets b where b.id = '00000000-0000-0000-0000-0000000b5eb1';

select * from finish();
rollback;
