-- The read layer: documented views in `analytics`, the only relations the query functions, dashboards
-- and analysts read usage sums from. Each runs with the caller's rights (security_invoker), so the
-- rollups' and the raw table's RLS decide what a user or an analyst role sees.
--
-- usage_hourly / usage_daily: materialized buckets + pending late deltas + raw rows at or past the
-- watermark, summed per bucket and dimensions: exact, and fresh the moment a row is committed. A group
-- summing to zero requests has no rows left (deleted since it was materialized) and is left out.
-- On the Timescale-licensed path they read the continuous aggregates through a function that applies
-- the organization filter RLS cannot (continuous aggregates have no RLS); untested on Apache builds.

-- ---------------------------------------------------------------- Timescale-licensed sources
-- Continuous aggregates have no RLS and cannot be granted safely, so on that path the views read them
-- through these definer functions, which keep the rows of the caller's organizations only (members
-- with usage.read, or the session's analyst login).
do $$
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    execute $f$
      create function private.usage_rollup_rows(grain text)
      returns table (bucket timestamptz, org_id uuid, team text, project text, provider text, model text,
                     feature text, api_key_id uuid, status text, requests bigint, errors bigint, timeouts bigint,
                     rate_limited bigint, retries bigint, cache_hits bigint, unpriced bigint, input_tokens bigint,
                     output_tokens bigint, cached_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint,
                     cost_usd numeric, latency_count bigint, latency_sum_ms bigint, latency_histogram bigint[])
      language sql stable security definer set search_path = '' as $b$
        select c.bucket, c.org_id, c.team, c.project, c.provider, c.model, c.feature, c.api_key_id, c.status,
               c.requests, c.errors, c.timeouts, c.rate_limited, c.retries, c.cache_hits, c.unpriced, c.input_tokens,
               c.output_tokens, c.cached_tokens, c.cache_write_tokens, c.reasoning_tokens, c.cost_usd,
               c.latency_count, c.latency_sum_ms, c.latency_histogram
        from private.usage_rollup_hourly_cagg c
        where grain = 'hour'
          and c.org_id = any (private.org_ids_with('usage.read') || private.analyst_org_ids())
        union all
        select c.bucket, c.org_id, c.team, c.project, c.provider, c.model, c.feature, c.api_key_id, c.status,
               c.requests, c.errors, c.timeouts, c.rate_limited, c.retries, c.cache_hits, c.unpriced, c.input_tokens,
               c.output_tokens, c.cached_tokens, c.cache_write_tokens, c.reasoning_tokens, c.cost_usd,
               c.latency_count, c.latency_sum_ms, c.latency_histogram
        from private.usage_rollup_daily_cagg c
        where grain = 'day'
          and c.org_id = any (private.org_ids_with('usage.read') || private.analyst_org_ids())
      $b$ $f$;
    execute $f$
      create function private.end_user_rollup_rows(grain text)
      returns table (bucket timestamptz, org_id uuid, end_user_id text, requests bigint, errors bigint,
                     input_tokens bigint, output_tokens bigint, cached_tokens bigint, cost_usd numeric)
      language sql stable security definer set search_path = '' as $b$
        select date_trunc(grain, c.bucket, 'UTC'), c.org_id, c.end_user_id, sum(c.requests)::bigint,
               sum(c.errors)::bigint, sum(c.input_tokens)::bigint, sum(c.output_tokens)::bigint,
               sum(c.cached_tokens)::bigint, sum(c.cost_usd)
        from private.end_user_rollup_daily_cagg c
        where c.org_id = any (private.org_ids_with('usage.read') || private.analyst_org_ids())
        group by 1, 2, 3
      $b$ $f$;
    comment on function private.usage_rollup_rows(text) is
      'Timescale path: continuous-aggregate buckets (hour|day) of the caller''s organizations.';
    comment on function private.end_user_rollup_rows(text) is
      'Timescale path: end-user buckets (day|month) of the caller''s organizations.';
    revoke all on function private.usage_rollup_rows(text), private.end_user_rollup_rows(text) from public;
    grant execute on function private.usage_rollup_rows(text), private.end_user_rollup_rows(text)
      to authenticated, tokentra_analyst, service_role;
  end if;
end
$$;

-- ---------------------------------------------------------------- usage buckets
do $$
declare
  -- The summed columns, in the order every branch yields them.
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
    reasoning_tokens, cost_usd, latency_count, latency_sum_ms, latency_histogram $s$;
  dims constant text := 'org_id, team, project, provider, model, feature, api_key_id, status';
  grain text;
begin
  foreach grain in array array['hour', 'day'] loop
    if (select kind from private.usage_layout) = 'hypertable' then
      execute format($v$
        create view analytics.%I with (security_invoker = true) as
        select * from private.usage_rollup_rows(%L) $v$,
        'usage_' || case grain when 'hour' then 'hourly' else 'daily' end, grain);
    else
      execute format($v$
        create view analytics.%1$I with (security_invoker = true) as
        select bucket, %2$s, %3$s
        from (
          select %4$s from private.%5$I
          union all
          select date_trunc(%6$L, bucket, 'UTC'), %2$s, requests, errors, timeouts, rate_limited, retries, cache_hits,
                 unpriced, input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
                 latency_count, latency_sum_ms, latency_histogram
          from private.usage_rollup_deltas
          union all
          select date_trunc(%6$L, u.occurred_at, 'UTC'), u.org_id, u.team, u.project, u.provider, u.model, u.feature,
                 u.api_key_id, u.status, count(*), count(*) filter (where u.status <> 'success'),
                 count(*) filter (where u.is_timeout), count(*) filter (where u.is_rate_limited), sum(u.retry_count),
                 count(*) filter (where u.cache_hit), count(*) filter (where not u.priced), sum(u.input_tokens),
                 sum(u.output_tokens), sum(u.cached_tokens), sum(u.cache_write_tokens), sum(u.reasoning_tokens),
                 coalesce(sum(u.cost_usd), 0), count(u.latency_ms), coalesce(sum(u.latency_ms), 0),
                 analytics.latency_histogram(u.latency_ms)
          from public.usage_records u
          where u.occurred_at >= (select s.watermark from private.usage_rollup_state s)
          group by 1, 2, 3, 4, 5, 6, 7, 8, 9
        ) s
        group by bucket, %2$s
        having sum(requests) <> 0 $v$,
        'usage_' || case grain when 'hour' then 'hourly' else 'daily' end, dims, sums, stored,
        'usage_rollup_' || case grain when 'hour' then 'hourly' else 'daily' end, grain);
    end if;
  end loop;
end
$$;

comment on view analytics.usage_hourly is
  'Usage per UTC hour and dimensions (organization, team, project, provider, model, feature, API key, status). '
  'Exact: equals the same sums over analytics.usage_records, including rows stored a moment ago.';
comment on view analytics.usage_daily is
  'Usage per UTC day and dimensions; same columns and guarantees as analytics.usage_hourly.';
do $$
declare
  v text;
begin
  foreach v in array array['usage_hourly', 'usage_daily'] loop
    execute format($c$
      comment on column analytics.%1$I.bucket is 'Start of the UTC hour or day.';
      comment on column analytics.%1$I.status is 'success, error, timeout, rate_limited or cancelled.';
      comment on column analytics.%1$I.requests is 'LLM calls.';
      comment on column analytics.%1$I.errors is 'Calls whose status is not success.';
      comment on column analytics.%1$I.timeouts is 'Calls that timed out.';
      comment on column analytics.%1$I.rate_limited is 'Calls refused by the provider''s rate limit.';
      comment on column analytics.%1$I.retries is 'Sum of the SDK''s retry counts.';
      comment on column analytics.%1$I.cache_hits is 'Calls answered from a cache.';
      comment on column analytics.%1$I.unpriced is 'Calls whose model had no known price (cost counted as 0).';
      comment on column analytics.%1$I.input_tokens is 'All input tokens, cache reads and writes included.';
      comment on column analytics.%1$I.cached_tokens is 'Input tokens read from a prompt cache.';
      comment on column analytics.%1$I.output_tokens is 'All output tokens, reasoning included.';
      comment on column analytics.%1$I.cost_usd is 'Exact sum of cost_usd (numeric, USD).';
      comment on column analytics.%1$I.latency_count is 'Calls with a latency; latency_sum_ms / latency_count is the mean.';
      comment on column analytics.%1$I.latency_histogram is
        'Latency counts per slot: analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.95).';
    $c$, v);
  end loop;
end
$$;

-- ---------------------------------------------------------------- end users
do $$
declare
  grain text;
  layout text := (select kind from private.usage_layout);
begin
  foreach grain in array array['day', 'month'] loop
    if layout = 'hypertable' then
      execute format($v$
        create view analytics.%I with (security_invoker = true) as
        select * from private.end_user_rollup_rows(%L) $v$,
        'end_user_' || case grain when 'day' then 'daily' else 'monthly' end, grain);
    else
      execute format($v$
        create view analytics.%1$I with (security_invoker = true) as
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
          where u.occurred_at >= (select s.watermark from private.usage_rollup_state s)
            and u.end_user_id is not null
          group by 1, 2, 3
        ) s
        group by bucket, org_id, end_user_id
        having sum(requests) <> 0 $v$,
        'end_user_' || case grain when 'day' then 'daily' else 'monthly' end,
        'end_user_rollup_' || case grain when 'day' then 'daily' else 'monthly' end, grain);
    end if;
  end loop;
end
$$;
comment on view analytics.end_user_daily is
  'Usage per UTC day and end user (metadata.user_id sent with the event); exact and fresh like usage_daily.';
comment on view analytics.end_user_monthly is 'Usage per UTC month and end user; exact and fresh like usage_daily.';

-- ---------------------------------------------------------------- raw rows and prices
create view analytics.usage_records with (security_invoker = true) as
  select id, org_id, occurred_at, received_at, request_id, source, provider, model, price_model, endpoint,
         input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, service_tier, cost_usd,
         client_cost_usd, currency, price_id, priced, latency_ms, time_to_first_token_ms, status, error_code,
         retry_count, is_timeout, is_rate_limited, is_streaming, routed_from_model, cache_hit, prompt_hash,
         task_type, team, project, feature, end_user_id, api_key_id, project_id, metadata
  from public.usage_records;
comment on view analytics.usage_records is
  'One row per LLM call (prompt text is never stored). Filter on occurred_at: the table is partitioned by day.';

create view analytics.model_prices with (security_invoker = true) as
  select id as price_id, provider_id, model_id, service_tier, effective_from, daily_from, daily_until,
         above_input_tokens, input_mtok, cache_read_mtok, cache_write_mtok, output_mtok, output_reasoning_mtok,
         requests_kcount
  from private.model_prices;
comment on view analytics.model_prices is
  'Prices in USD per million tokens; usage_records.price_id names the row a call was priced with.';

-- ---------------------------------------------------------------- grants
grant select on analytics.usage_hourly, analytics.usage_daily, analytics.end_user_daily, analytics.end_user_monthly,
  analytics.usage_records, analytics.model_prices to authenticated, tokentra_analyst, service_role;
