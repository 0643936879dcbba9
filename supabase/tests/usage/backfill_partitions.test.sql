-- Every timestamp ingest accepts lands in a day partition, never the default one; maintenance moves a
-- row stranded in the default partition into a day partition of its own and keeps running.
begin;
select plan(10);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000b001', 'backfill');
create temp table backfill_events as
select jsonb_agg(jsonb_build_object(
  'idx', n, 'request_id', 'backfill-' || days, 'source', 'sdk', 'provider', 'openai', 'model', 'gpt-4o',
  'input_tokens', 100, 'output_tokens', 10, 'cached_tokens', 0, 'cache_write_tokens', 0,
  'reasoning_tokens', 0, 'status', 'success', 'retry_count', 0, 'is_timeout', false,
  'is_rate_limited', false, 'is_streaming', false, 'cache_hit', false, 'metadata', '{}'::jsonb,
  'occurred_at', now() - make_interval(days => days) + interval '1 minute', 'content_hash', '00')) as events
from unnest(array[36, 200, 399]) with ordinality as t(days, n);

-- ingest asks for the days' partitions first: made once, then found
select cmp_ok(private.ensure_usage_partitions(array[now() - interval '36 days', now() - interval '200 days',
                                                    now() - interval '399 days']), '>=', 1,
              'the missing day partitions of a backfill are made');
select is(private.ensure_usage_partitions(array[now() - interval '36 days', now() - interval '200 days',
                                                now() - interval '399 days']), 0, 'and found the next time');
select is((select count(*)::int from private.ingest_events('00000000-0000-0000-0000-00000000b001', null, null,
                                                           (select events from backfill_events))
           where outcome = 'accepted'), 3, 'events 36, 200 and 399 days old are accepted');
-- each landed in a day partition of its own
select is_empty($$ select 1 from public.usage_records
                   where org_id = '00000000-0000-0000-0000-00000000b001'
                     and tableoid = 'public.usage_records_default'::regclass $$,
                'no accepted event is in the default partition');
select is((select count(distinct tableoid)::int from public.usage_records
           where org_id = '00000000-0000-0000-0000-00000000b001'), 3, 'three day partitions hold them');
-- maintenance runs with them in place
select matches(private.usage_maintenance(), '^usage maintenance done', 'maintenance runs after the backfill');

-- a row stranded in the default partition (its day partition gone) is moved by maintenance
select private.refresh_usage_rollups() is not null as refreshed;
create temp table before_totals as
select sum(requests) as requests, sum(cost_usd) as cost from analytics.usage_daily
where org_id = '00000000-0000-0000-0000-00000000b001';
do $$
begin
  execute format('drop table if exists public.%I', 'usage_records_p' || to_char((now() - interval '250 days') at time zone 'UTC', 'YYYYMMDD'));
end
$$;
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens)
values ('00000000-0000-0000-0000-00000000b001', now() - interval '250 days', 'stranded', 'openai', 'gpt-4o', 5);
create temp table stranded as
select id, tableoid::regclass as part from public.usage_records where request_id = 'stranded';
select is((select part from stranded), 'public.usage_records_default'::regclass,
          'without its day partition a row lands in the default partition');
select matches(private.usage_maintenance(), '^usage maintenance done, 1 backfilled rows moved',
               'maintenance moves it out instead of failing');
select results_eq($$ select id, tableoid <> 'public.usage_records_default'::regclass
                     from public.usage_records where request_id = 'stranded' $$,
                  $$ select id, true from stranded $$, 'it keeps its id, in a day partition');
select results_eq($$ select sum(requests), sum(cost_usd) from analytics.usage_daily
                     where org_id = '00000000-0000-0000-0000-00000000b001' $$,
                  $$ select requests + 1, cost from before_totals $$,
                  'the rollups count it once');

select * from finish();
rollback;
