-- The read views add the raw rows past the watermark, found with a subquery whose value the planner
-- cannot know: it guessed a third of the usage table. For an organization with most of a day's calls it
-- then scanned the day's partition whole on every read of the views, whatever the read asked for (an
-- organization's daily rows: 10 s with 2.4 million calls stored; the hourly buckets a metric alert rule
-- reads: 70 ms a rule). A function call gives the planner the watermark to estimate with, and prunes
-- partitions when the query starts, so the rows past the watermark are found in the index; the subquery
-- stays beside it as the cheap per-row test, so the function runs only for rows past the watermark when
-- a scan is chosen anyway (a refresh far behind). The views are otherwise those of 20261202003000 and
-- 20261122002500 (create or replace keeps their grants and comments).

-- Not inlined (the SET clause prevents it), which is the point: an inlined body would be the subquery again.
create function private.usage_rollup_watermark() returns timestamptz
language sql stable set search_path = '' as $$
  select s.watermark from private.usage_rollup_state s
$$;
comment on function private.usage_rollup_watermark() is
  'The rollup watermark, as a function call the planner evaluates to estimate the raw rows past it.';
revoke all on function private.usage_rollup_watermark() from public;
grant execute on function private.usage_rollup_watermark() to authenticated, tokentra_analyst, service_role;

do $$
declare
  sums constant text := $s$
    sum(requests)::bigint as requests, sum(errors)::bigint as errors, sum(timeouts)::bigint as timeouts,
    sum(rate_limited)::bigint as rate_limited, sum(retries)::bigint as retries,
    sum(cache_hits)::bigint as cache_hits, sum(unpriced)::bigint as unpriced,
    sum(input_tokens)::bigint as input_tokens, sum(output_tokens)::bigint as output_tokens,
    sum(cached_tokens)::bigint as cached_tokens, sum(cache_write_tokens)::bigint as cache_write_tokens,
    sum(reasoning_tokens)::bigint as reasoning_tokens, sum(cost_usd) as cost_usd,
    sum(latency_count)::bigint as latency_count, sum(latency_sum_ms)::bigint as latency_sum_ms,
    analytics.merge_latency(latency_histogram) as latency_histogram $s$;
  stored constant text := $s$
    bucket, org_id, team, project, provider, model, feature, api_key_id, status, requests, errors, timeouts,
    rate_limited, retries, cache_hits, unpriced, input_tokens, output_tokens, cached_tokens, cache_write_tokens,
    reasoning_tokens, cost_usd, latency_count, latency_sum_ms, latency_histogram, canonical_model $s$;
  dims constant text := 'org_id, team, project, provider, model, feature, api_key_id, status';
  past_watermark constant text := $s$
    u.occurred_at >= private.usage_rollup_watermark()
    and u.occurred_at >= (select s.watermark from private.usage_rollup_state s) $s$;
  grain text;
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    return;
  end if;
  foreach grain in array array['hour', 'day'] loop
    execute format($v$
      create or replace view analytics.%1$I with (security_invoker = true) as
      select bucket, %2$s, %3$s, canonical_model
      from (
        select %4$s from private.%5$I
        union all
        select date_trunc(%6$L, bucket, 'UTC'), %2$s, requests, errors, timeouts, rate_limited, retries, cache_hits,
               unpriced, input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
               latency_count, latency_sum_ms, latency_histogram, canonical_model
        from private.usage_rollup_deltas
        union all
        select date_trunc(%6$L, u.occurred_at, 'UTC'), u.org_id, u.team, u.project, u.provider, u.model, u.feature,
               u.api_key_id, u.status, count(*), count(*) filter (where u.status <> 'success'),
               count(*) filter (where u.is_timeout), count(*) filter (where u.is_rate_limited), sum(u.retry_count),
               count(*) filter (where u.cache_hit), count(*) filter (where not u.priced), sum(u.input_tokens),
               sum(u.output_tokens), sum(u.cached_tokens), sum(u.cache_write_tokens), sum(u.reasoning_tokens),
               coalesce(sum(u.cost_usd), 0), count(u.latency_ms), coalesce(sum(u.latency_ms), 0),
               analytics.latency_histogram(u.latency_ms), u.canonical_model
        from public.usage_records u
        where %7$s
        group by 1, 2, 3, 4, 5, 6, 7, 8, 9, u.canonical_model
      ) s
      group by bucket, %2$s, canonical_model
      having sum(requests) <> 0 $v$,
      'usage_' || case grain when 'hour' then 'hourly' else 'daily' end, dims, sums, stored,
      'usage_rollup_' || case grain when 'hour' then 'hourly' else 'daily' end, grain, past_watermark);
  end loop;
  foreach grain in array array['day', 'month'] loop
    execute format($v$
      create or replace view analytics.%1$I with (security_invoker = true) as
      select bucket, org_id, end_user_id, sum(requests)::bigint as requests, sum(errors)::bigint as errors,
             sum(input_tokens)::bigint as input_tokens, sum(output_tokens)::bigint as output_tokens,
             sum(cached_tokens)::bigint as cached_tokens, sum(cost_usd) as cost_usd
      from (
        select bucket, org_id, end_user_id, requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd
        from private.%2$I
        union all
        select date_trunc(%3$L, bucket, 'UTC'), org_id, end_user_id, requests, errors, input_tokens, output_tokens,
               cached_tokens, cost_usd
        from private.end_user_rollup_deltas
        union all
        select date_trunc(%3$L, u.occurred_at, 'UTC'), u.org_id, u.end_user_id, count(*),
               count(*) filter (where u.status <> 'success'), sum(u.input_tokens), sum(u.output_tokens),
               sum(u.cached_tokens), coalesce(sum(u.cost_usd), 0)
        from public.usage_records u
        where %4$s
          and u.end_user_id is not null
        group by 1, 2, 3
      ) s
      group by bucket, org_id, end_user_id
      having sum(requests) <> 0 $v$,
      'end_user_' || case grain when 'day' then 'daily' else 'monthly' end,
      'end_user_rollup_' || case grain when 'day' then 'daily' else 'monthly' end, grain, past_watermark);
  end loop;
end
$$;
