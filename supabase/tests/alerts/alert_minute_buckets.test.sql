-- The minute sums metric rules read follow the watermark: a refresh sums the rows it passes, minutes past
-- three hours go, and truncating the usage table empties them.
begin;
select plan(8);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000a11e', 'minutes');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced, status, latency_ms)
select '00000000-0000-0000-0000-00000000a11e', now() - make_interval(mins => m), 'minute-' || m, 'openai', 'gpt-4o',
       0.5, true, case when m % 3 = 0 then 'error' else 'success' end, 100 * m
from generate_series(1, 300) m;

select has_trigger('private', 'usage_rollup_state', 'follow_usage_watermark', 'a watermark move updates the minutes');
select private.refresh_usage_rollups(now() - interval '10 minutes', null);

select results_eq(
  $$select sum(requests)::bigint, sum(errors)::bigint, sum(cost_usd) from private.usage_minutes
     where org_id = '00000000-0000-0000-0000-00000000a11e'$$,
  $$select sum(requests)::bigint, sum(errors)::bigint, sum(cost_usd) from (
      select count(*) as requests, count(*) filter (where status <> 'success') as errors, sum(cost_usd) as cost_usd
        from public.usage_records where org_id = '00000000-0000-0000-0000-00000000a11e'
         and occurred_at >= private.usage_minutes_keep_from() and occurred_at < now() - interval '10 minutes'
       group by date_bin('1 minute', occurred_at, timestamptz '2000-01-01')) x$$,
  'the refresh summed exactly the rows it passed, per minute, from three hours back');
select is((select min(bucket) from private.usage_minutes), private.usage_minutes_keep_from(),
          'nothing older than three hours is kept');
select is((select complete_since from private.usage_minutes_state), private.usage_minutes_keep_from(),
          'the minutes are complete from three hours back');

-- a late row (below the watermark) is added to its minute in the same statement
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
values ('00000000-0000-0000-0000-00000000a11e', now() - interval '30 minutes 10 seconds', 'late', 'openai', 'gpt-4o',
        7, true);
select is((select sum(cost_usd) from private.usage_minutes where org_id = '00000000-0000-0000-0000-00000000a11e'
            and bucket = date_bin('1 minute', now() - interval '30 minutes 10 seconds', timestamptz '2000-01-01')),
          7.5, 'a late row lands in its minute');

-- a watermark moved back starts the minutes over from it (rows past it are read raw)
update private.usage_rollup_state set watermark = now() - interval '1 hour';
select results_eq($$select (select count(*) from private.usage_minutes), (select complete_since from private.usage_minutes_state)$$,
                  $$values (0::bigint, now() - interval '1 hour')$$, 'a watermark moved back empties the minutes');

truncate public.usage_records;
select is((select count(*) from private.usage_minutes), 0::bigint, 'truncating the usage empties the minutes');
select is((select complete_since from private.usage_minutes_state), '-infinity'::timestamptz,
          'and the empty minutes are complete');

select * from finish();
rollback;
