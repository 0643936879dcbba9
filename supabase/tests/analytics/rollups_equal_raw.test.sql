-- The rollup read views equal aggregates over the raw rows at every step: rows past the watermark,
-- late rows below it (pending deltas), after a refresh, after re-pricing and deletes, and again after
-- the refresh that folds those in. Time is simulated by back-dating rows, never by sleeping.
begin;
select plan(9);

insert into public.organizations (id, name) values ('00000000-0000-4000-8000-00000000a001', 'rollups-a');

-- Differences between a rollup view and the raw rows of the test organization (empty when equal).
create function pg_temp.usage_diff(grain text) returns table (bucket timestamptz, model text, what text)
language sql as $$
  with v as (
    select v.bucket, v.team, v.model, v.status, v.requests, v.errors, v.input_tokens, v.cost_usd, v.latency_count,
           v.latency_sum_ms
    from analytics.usage_hourly v where grain = 'hour' and v.org_id = '00000000-0000-4000-8000-00000000a001'
    union all
    select v.bucket, v.team, v.model, v.status, v.requests, v.errors, v.input_tokens, v.cost_usd, v.latency_count,
           v.latency_sum_ms
    from analytics.usage_daily v where grain = 'day' and v.org_id = '00000000-0000-4000-8000-00000000a001'
  ), r as (
    select date_trunc(grain, u.occurred_at, 'UTC') as bucket, u.team, u.model, u.status, count(*) as requests,
           count(*) filter (where u.status <> 'success') as errors, sum(u.input_tokens) as input_tokens,
           coalesce(sum(u.cost_usd), 0) as cost_usd, count(u.latency_ms) as latency_count,
           coalesce(sum(u.latency_ms), 0) as latency_sum_ms
    from public.usage_records u where u.org_id = '00000000-0000-4000-8000-00000000a001'
    group by 1, 2, 3, 4
  )
  select coalesce(v.bucket, r.bucket), coalesce(v.model, r.model),
         case when v.bucket is null then 'missing from the view' when r.bucket is null then 'extra in the view'
              else 'sums differ' end
  from v full join r on v.bucket = r.bucket and v.team is not distinct from r.team and v.model = r.model
                     and v.status = r.status
  where v.bucket is null or r.bucket is null
     or (v.requests, v.errors, v.input_tokens, v.cost_usd, v.latency_count, v.latency_sum_ms)
        is distinct from (r.requests, r.errors, r.input_tokens, r.cost_usd, r.latency_count, r.latency_sum_ms)
$$;

create function pg_temp.add(n integer, age interval, model text) returns void language sql as $$
  insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, status, input_tokens,
                                    output_tokens, cost_usd, priced, latency_ms, end_user_id)
  select '00000000-0000-4000-8000-00000000a001', now() - age - g * interval '7 minutes', gen_random_uuid()::text,
         'openai', model, case when g % 2 = 0 then 'team-x' end, case when g % 3 = 0 then 'error' else 'success' end,
         100 * g, 10 * g, 0.000000123456 * g, true, 40 * g, 'user-' || g % 2
  from generate_series(1, n) g
$$;

-- start from a watermark at now: everything older is late from here on
select private.refresh_usage_rollups();
select pg_temp.add(5, interval '0', 'gpt-4o');
select pg_temp.add(6, interval '2 days', 'gpt-4o-mini');

-- rows past the watermark and late rows (pending deltas) both count at once
select is_empty($$ select * from pg_temp.usage_diff('hour') $$, 'hourly view equals raw before any refresh');
select is_empty($$ select * from pg_temp.usage_diff('day') $$, 'daily view equals raw before any refresh');
select ok((select count(*) > 0 from private.usage_rollup_deltas where org_id = '00000000-0000-4000-8000-00000000a001'),
          'late rows wait as deltas');

-- a refresh folds the deltas and materializes the raw tail
select private.refresh_usage_rollups();
select is_empty($$ select * from private.usage_rollup_deltas where org_id = '00000000-0000-4000-8000-00000000a001' $$,
                'the refresh folds every delta');
select is_empty($$ select * from pg_temp.usage_diff('day') $$, 'daily view equals raw after the refresh');

-- re-pricing and deleting rows below the watermark move their buckets
update public.usage_records set cost_usd = cost_usd * 2 + 0.000000000001
 where org_id = '00000000-0000-4000-8000-00000000a001' and model = 'gpt-4o-mini';
delete from public.usage_records where org_id = '00000000-0000-4000-8000-00000000a001' and team is null;
select is_empty($$ select * from pg_temp.usage_diff('hour') $$, 'hourly view equals raw after updates and deletes');
select private.refresh_usage_rollups();
select is_empty($$ select * from pg_temp.usage_diff('day') $$, 'daily view equals raw after folding them');

-- end users, and the query functions' own read path
select results_eq(
  $$ select bucket, end_user_id, requests::bigint, cost_usd from analytics.end_user_monthly
     where org_id = '00000000-0000-4000-8000-00000000a001' order by 1, 2 $$,
  $$ select date_trunc('month', occurred_at, 'UTC'), end_user_id, count(*), coalesce(sum(cost_usd), 0)
     from public.usage_records where org_id = '00000000-0000-4000-8000-00000000a001'
     group by 1, 2 order by 1, 2 $$,
  'end-user month equals raw');
select results_eq(
  $$ select model, requests, cost_usd from private.usage_summary(
       date_trunc('day', now(), 'UTC') - interval '5 days', date_trunc('day', now(), 'UTC') + interval '1 day',
       'total', array['model'], only_org => '00000000-0000-4000-8000-00000000a001') order by 1 $$,
  $$ select model, count(*), coalesce(sum(cost_usd), 0) from public.usage_records
     where org_id = '00000000-0000-4000-8000-00000000a001' group by 1 order by 1 $$,
  'usage_summary equals raw');

select * from finish();
rollback;
