-- Query functions behind GET /costs, /dashboard/overview and /usage/timeseries. They run with the
-- caller's rights (never security definer): the functions set `role authenticated` and the user's JWT
-- claims, and RLS on the rollups and the raw table decides which organizations count. Results are built
-- as jsonb so sums keep every decimal (numeric), which is what makes them equal raw aggregates exactly.

-- ---------------------------------------------------------------- the core
-- The dimensions a breakdown may group or filter by, as named in the rollups.
create function private.usage_dimensions() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['org_id', 'team', 'project', 'provider', 'model', 'feature', 'api_key_id', 'status']
$$;
comment on function private.usage_dimensions() is 'Columns of the usage rollups one can group and filter by.';

-- The rows every summary sums, as SQL: over [$1, $2), the rollup of the grain's rows, the pending
-- deltas and the raw rows at or past the watermark ($11), each cut to buckets of the grain, narrowed by
-- `filters` (built by the caller from private.usage_dimensions() only, values as $3 .. $10). The same
-- union as analytics.usage_daily/hourly, but with the watermark a planning-time constant so Postgres
-- prunes the raw table's partitions while planning (planning every day partition costs more than the
-- query), and summed once by the caller instead of twice. The Timescale path reads the views.
create function private.usage_sources_sql(grain text, filters text, with_latency boolean) returns text
language sql stable set search_path = '' as $$
  select case when private.rollups_are_continuous_aggregates() then
    format('select * from analytics.%I where bucket >= $1 and bucket < $2 %s',
           case grain when 'hour' then 'usage_hourly' else 'usage_daily' end, filters)
  else format($s$
      select bucket, org_id, team, project, provider, model, feature, api_key_id, status, requests, errors, timeouts,
             rate_limited, retries, cache_hits, unpriced, input_tokens, output_tokens, cached_tokens,
             cache_write_tokens, reasoning_tokens, cost_usd, latency_count, latency_sum_ms, %1$s as latency_histogram
      from private.%2$I where bucket >= $1 and bucket < $2 %3$s
      union all
      select date_bin(%5$L, bucket, timestamptz '2000-01-01 00:00:00+00'), org_id, team, project, provider, model,
             feature, api_key_id, status, requests, errors, timeouts, rate_limited, retries, cache_hits, unpriced,
             input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, latency_count,
             latency_sum_ms, %1$s
      from private.usage_rollup_deltas where bucket >= $1 and bucket < $2 %3$s
      union all
      select date_bin(%5$L, occurred_at, timestamptz '2000-01-01 00:00:00+00'), org_id, team, project, provider,
             model, feature, api_key_id, status, 1,
             (status <> 'success')::integer, is_timeout::integer, is_rate_limited::integer, retry_count,
             cache_hit::integer, (not priced)::integer, input_tokens, output_tokens, cached_tokens, cache_write_tokens,
             reasoning_tokens, coalesce(cost_usd, 0), (latency_ms is not null)::integer, coalesce(latency_ms, 0), %4$s
      from public.usage_records where occurred_at >= $11 and occurred_at >= $1 and occurred_at < $2 %3$s $s$,
      case when with_latency then 'latency_histogram' else 'null::bigint[]' end,
      case grain when 'hour' then 'usage_rollup_hourly' else 'usage_rollup_daily' end,
      filters,
      case when with_latency then 'private.histogram_put_latency(null, latency_ms)' else 'null::bigint[]' end,
      '1 ' || grain)
  end
$$;
comment on function private.usage_sources_sql(text, text, boolean) is
  'SQL of the rows to sum for a grain (hour|day): rollup + pending deltas + raw tail; see usage_summary.';

-- Sums over [start_at, end_at) per time bucket (granularity hour|day, or total) and the chosen
-- dimensions, filtered by any of them. Reads the daily rows when the range is whole UTC days and hours
-- are not asked for, the hourly ones otherwise (the range must then be whole hours).
-- Identifiers in the dynamic SQL come only from private.usage_dimensions(); values are parameters.
create function private.usage_summary(
  start_at timestamptz, end_at timestamptz, granularity text default 'total', group_by text[] default '{}',
  only_org uuid default null, only_team text default null, only_project text default null,
  only_feature text default null, only_model text default null, only_provider text default null,
  only_api_key uuid default null, only_status text default null, with_latency boolean default false,
  lean boolean default false)
returns table (
  bucket timestamptz, org_id uuid, team text, project text, provider text, model text, feature text,
  api_key_id uuid, status text, requests bigint, errors bigint, timeouts bigint, rate_limited bigint,
  retries bigint, cache_hits bigint, unpriced bigint, input_tokens bigint, output_tokens bigint,
  cached_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint, cost_usd numeric,
  avg_latency_ms numeric, latency_p50_ms integer, latency_p95_ms integer, latency_p99_ms integer)
language plpgsql stable set search_path = '' as $$
declare
  dims constant text[] := private.usage_dimensions();
  dim_types constant text[] := array['uuid', 'text', 'text', 'text', 'text', 'text', 'uuid', 'text'];
  filter_values constant text[] := array[only_org::text, only_team, only_project, only_provider, only_model,
                                         only_feature, only_api_key::text, only_status];
  whole_days boolean := start_at = date_trunc('day', start_at, 'UTC') and end_at = date_trunc('day', end_at, 'UTC');
  -- Read in the same snapshot as the query below (a stable function keeps its caller's snapshot).
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
  grain text;
  bucket_expr text;
  select_dims text := '';
  group_dims text := '';
  filters text := '';
  sources text;
  query text;
begin
  if granularity is null or granularity not in ('total', 'hour', 'day') then
    raise exception 'granularity must be total, hour or day' using errcode = '22023';
  end if;
  if start_at is null or end_at is null or end_at <= start_at then
    raise exception 'the range must be non-empty (start before end)' using errcode = '22023';
  end if;
  if not coalesce(group_by, '{}') <@ dims then
    raise exception 'group_by may only name %', array_to_string(dims, ', ') using errcode = '22023';
  end if;
  grain := case when granularity = 'hour' or not whole_days then 'hour' else 'day' end;
  -- Every source yields buckets of the source's grain; only a coarser granularity truncates again.
  bucket_expr := case when granularity = 'total' then 'null::timestamptz'
                      when granularity = grain then 'bucket'
                      else format('date_trunc(%L, bucket, %L)', granularity, 'UTC') end;
  if grain = 'hour' and (start_at <> date_trunc('hour', start_at, 'UTC') or end_at <> date_trunc('hour', end_at, 'UTC')) then
    raise exception 'start and end must fall on whole UTC hours' using errcode = '22023';
  end if;

  for i in 1 .. array_length(dims, 1) loop
    if dims[i] = any (coalesce(group_by, '{}')) then
      select_dims := select_dims || format(', %I', dims[i]);
      group_dims := group_dims || format(', %I', dims[i]);
    else
      select_dims := select_dims || format(', null::%s', dim_types[i]);
    end if;
    -- $3 .. $10 carry the filter values in the order of private.usage_dimensions().
    if filter_values[i] is not null then
      filters := filters || format(' and %I = $%s', dims[i], i + 2);
    end if;
  end loop;

  sources := private.usage_sources_sql(grain, filters, with_latency);

  query := format($q$
    select %s%s, sum(requests)::bigint, sum(errors)::bigint, %s, sum(cost_usd), %s, %s
    from (%s) s
    group by %s
    having sum(requests) > 0
    order by 1, sum(cost_usd) desc $q$,
    bucket_expr,
    select_dims,
    -- Lean callers (the overview) skip the token and counter sums: each sum is a state per group.
    case when lean then 'null::bigint, null::bigint, null::bigint, null::bigint, null::bigint, null::bigint, '
                        'null::bigint, null::bigint, null::bigint, null::bigint'
    else 'sum(timeouts)::bigint, sum(rate_limited)::bigint, sum(retries)::bigint, sum(cache_hits)::bigint, '
         'sum(unpriced)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(cached_tokens)::bigint, '
         'sum(cache_write_tokens)::bigint, sum(reasoning_tokens)::bigint' end,
    case when lean then 'null::numeric'
    else 'round(sum(latency_sum_ms)::numeric / nullif(sum(latency_count), 0), 1)' end,
    case when with_latency then
      'analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.5), '
      'analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.95), '
      'analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.99)'
    else 'null::integer, null::integer, null::integer' end,
    sources,
    case granularity when 'total' then '1' else bucket_expr end || group_dims);
  return query execute query
    using start_at, end_at, only_org, only_team, only_project, only_provider, only_model, only_feature,
          only_api_key, only_status, wm;
end
$$;
comment on function private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text,
                                          uuid, text, boolean, boolean) is
  'Usage sums over [start_at, end_at) per bucket (total|hour|day) and group_by dimensions, with optional filters '
  'and latency percentiles (lean: requests, errors and cost only); reads rollups, pending deltas and the raw '
  'tail under the caller''s RLS.';

-- The top `top` end users by cost over [start_at, end_at) (whole UTC days): requests, errors and cost
-- only, for the overview. Same sources and pruning as usage_summary; whole calendar months read the
-- monthly rollup (one row per user), anything else the daily one.
create function private.end_user_summary(start_at timestamptz, end_at timestamptz, only_org uuid default null,
                                         top integer default 10)
returns table (end_user_id text, requests bigint, errors bigint, cost_usd numeric)
language plpgsql stable set search_path = '' as $$
declare
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
  months boolean := start_at = date_trunc('month', start_at, 'UTC') and end_at = date_trunc('month', end_at, 'UTC');
  query text;
begin
  if start_at <> date_trunc('day', start_at, 'UTC') or end_at <> date_trunc('day', end_at, 'UTC') then
    raise exception 'start and end must fall on whole UTC days' using errcode = '22023';
  end if;
  if private.rollups_are_continuous_aggregates() then
    query := format('select end_user_id, requests, errors, cost_usd from analytics.%I where bucket >= $1 and bucket < $2 %s',
                    case when months then 'end_user_monthly' else 'end_user_daily' end,
                    case when only_org is null then '' else 'and org_id = $3' end);
  else
    query := format($s$
      select end_user_id, requests, errors, cost_usd
      from private.%1$I where bucket >= $1 and bucket < $2 %2$s
      union all
      select end_user_id, requests, errors, cost_usd
      from private.end_user_rollup_deltas where bucket >= $1 and bucket < $2 %2$s
      union all
      select end_user_id, 1, (status <> 'success')::integer, coalesce(cost_usd, 0)
      from public.usage_records
      where occurred_at >= $4 and occurred_at >= $1 and occurred_at < $2 and end_user_id is not null %2$s $s$,
      case when months then 'end_user_rollup_monthly' else 'end_user_rollup_daily' end,
      case when only_org is null then '' else 'and org_id = $3' end);
  end if;
  return query execute format($q$
    select end_user_id, sum(requests)::bigint, sum(errors)::bigint, sum(cost_usd)
    from (%s) s
    group by end_user_id
    having sum(requests) > 0
    order by sum(cost_usd) desc, end_user_id
    limit $5 $q$, query)
    using start_at, end_at, only_org, wm, top;
end
$$;
comment on function private.end_user_summary(timestamptz, timestamptz, uuid, integer) is
  'The top end users by cost over [start_at, end_at) (whole UTC days) under the caller''s RLS.';

-- ---------------------------------------------------------------- GET /costs
-- Row keys follow seed 000 §10.1: the grouped dimensions, then total_* sums. `date`/`hour` name the bucket.
create function public.cost_breakdown(
  start_date date, end_date date, group_by text[] default '{}', granularity text default 'total',
  org uuid default null, team text default null, project text default null, feature text default null,
  model text default null, provider text default null, api_key uuid default null, status text default null)
returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce(jsonb_agg(
      jsonb_strip_nulls(jsonb_build_object(
        'date', case when granularity = 'day' then (s.bucket at time zone 'UTC')::date end,
        'hour', case when granularity = 'hour' then s.bucket end))
      || (to_jsonb(s) - 'bucket' - 'avg_latency_ms' - 'latency_p50_ms' - 'latency_p95_ms' - 'latency_p99_ms'
          - 'requests' - 'errors' - 'timeouts' - 'rate_limited' - 'retries' - 'cache_hits' - 'unpriced'
          - 'input_tokens' - 'output_tokens' - 'cached_tokens' - 'cache_write_tokens' - 'reasoning_tokens' - 'cost_usd'
          - array(select d from unnest(private.usage_dimensions()) d where d <> all (coalesce(group_by, '{}'))))
      || jsonb_build_object(
        'total_cost', s.cost_usd, 'total_requests', s.requests, 'total_input_tokens', s.input_tokens,
        'total_output_tokens', s.output_tokens, 'total_cached_tokens', s.cached_tokens,
        'total_cache_write_tokens', s.cache_write_tokens, 'total_reasoning_tokens', s.reasoning_tokens,
        'total_errors', s.errors, 'total_timeouts', s.timeouts, 'total_rate_limited', s.rate_limited,
        'total_retries', s.retries, 'total_cache_hits', s.cache_hits, 'unpriced_requests', s.unpriced)
      order by s.bucket, s.cost_usd desc), '[]'::jsonb),
    'meta', jsonb_build_object(
      'start_date', start_date, 'end_date', end_date, 'currency', 'USD', 'granularity', granularity,
      'group_by', to_jsonb(coalesce(group_by, '{}'))))
  from private.usage_summary(start_date::timestamp at time zone 'UTC', (end_date + 1)::timestamp at time zone 'UTC',
                             granularity, group_by, org, team, project, feature, model, provider, api_key, status) s
$$;
comment on function public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text) is
  'GET /costs: cost and token totals from start_date to end_date (inclusive, UTC days) per group_by dimensions '
  'and granularity (total|day|hour), as {"data": [...], "meta": {...}}.';

-- ---------------------------------------------------------------- GET /usage/timeseries
create function public.usage_timeseries(
  start_at timestamptz, end_at timestamptz, granularity text default 'hour', group_by text default null,
  org uuid default null, team text default null, project text default null, feature text default null,
  model text default null, provider text default null, api_key uuid default null, status text default null)
returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce(jsonb_agg(
      jsonb_build_object('bucket', s.bucket)
      || case when group_by is null then '{}'::jsonb else jsonb_build_object(group_by, to_jsonb(s) -> group_by) end
      || jsonb_build_object(
        'cost_usd', s.cost_usd, 'requests', s.requests, 'errors', s.errors, 'input_tokens', s.input_tokens,
        'output_tokens', s.output_tokens, 'cached_tokens', s.cached_tokens, 'avg_latency_ms', s.avg_latency_ms,
        'latency_p50_ms', s.latency_p50_ms, 'latency_p95_ms', s.latency_p95_ms, 'latency_p99_ms', s.latency_p99_ms)
      order by s.bucket, s.cost_usd desc), '[]'::jsonb),
    'meta', jsonb_build_object('start', start_at, 'end', end_at, 'granularity', granularity, 'group_by', group_by,
                               'currency', 'USD'))
  from private.usage_summary(start_at, end_at, granularity,
                             case when group_by is null then '{}'::text[] else array[group_by] end,
                             org, team, project, feature, model, provider, api_key, status, true) s
$$;
comment on function public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text,
                                            uuid, text) is
  'GET /usage/timeseries: per-bucket (hour|day) cost, requests, tokens and latency percentiles over '
  '[start_at, end_at), optionally one series per value of one dimension.';

-- ---------------------------------------------------------------- GET /dashboard/overview
-- Everything the overview sums, in one pass over the daily rows of [start_at, end_at): per day, and
-- per provider, team, feature and API key for the days from month_start on (grouping sets).
create function private.usage_overview_sums(start_at timestamptz, month_start timestamptz, end_at timestamptz,
                                            only_org uuid default null)
returns table (grouped_by text, bucket timestamptz, key text, requests bigint, errors bigint, cost_usd numeric)
language plpgsql stable set search_path = '' as $$
declare
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
begin
  return query execute format($q$
    select case grouping(bucket, provider, team, feature, api_key_id)
             when 15 then 'day' when 23 then 'provider' when 27 then 'team' when 29 then 'feature' else 'api_key_id'
           end,
           bucket, coalesce(provider, team, feature, api_key_id::text),
           -- per day: every day of the range; per dimension: month-to-date only
           case when grouping(bucket) = 0 then sum(requests) else sum(requests) filter (where bucket >= $12) end::bigint,
           case when grouping(bucket) = 0 then sum(errors) else sum(errors) filter (where bucket >= $12) end::bigint,
           case when grouping(bucket) = 0 then sum(cost_usd) else sum(cost_usd) filter (where bucket >= $12) end
    from (%s) s
    group by grouping sets ((bucket), (provider), (team), (feature), (api_key_id))
    having case when grouping(bucket) = 0 then sum(requests) else sum(requests) filter (where bucket >= $12) end > 0
    $q$,
    private.usage_sources_sql('day', case when only_org is null then '' else 'and org_id = $3' end, false))
  using start_at, end_at, only_org, null::text, null::text, null::text, null::text, null::text, null::uuid,
        null::text, wm, month_start;
end
$$;
comment on function private.usage_overview_sums(timestamptz, timestamptz, timestamptz, uuid) is
  'Requests, errors and cost per day over [start_at, end_at), and per provider, team, feature and API key '
  'from month_start on: the sums of the dashboard overview, in one pass.';

-- Month-to-date in UTC. The comparison period is the same days of the previous month (1st up to
-- today's day of month, clamped to that month's length), whole days on both sides.
create function public.dashboard_overview(org uuid default null, as_of timestamptz default now())
returns jsonb
language plpgsql stable set search_path = '' as $$
declare
  month_start constant timestamptz := date_trunc('month', as_of, 'UTC');
  next_day constant timestamptz := date_trunc('day', as_of, 'UTC') + interval '1 day';
  prev_start constant timestamptz := month_start - interval '1 month';
  prev_end constant timestamptz := least(prev_start + (next_day - month_start), month_start);
  result jsonb;
begin
  with sums as materialized (
    select * from private.usage_overview_sums(prev_start, month_start, next_day, org)
  ), days as (
    select s.bucket, s.requests, s.errors, s.cost_usd from sums s where s.grouped_by = 'day'
  ), totals as (
    select coalesce(sum(d.cost_usd) filter (where d.bucket >= month_start), 0) as spend,
           coalesce(sum(d.cost_usd) filter (where d.bucket >= prev_start and d.bucket < prev_end), 0) as previous,
           coalesce(sum(d.requests) filter (where d.bucket >= month_start), 0) as requests,
           coalesce(sum(d.errors) filter (where d.bucket >= month_start), 0) as errors,
           (select count(*) from sums p where p.grouped_by = 'provider') as providers
    from days d
  )
  select jsonb_build_object(
    'period', jsonb_build_object(
      'start', (month_start at time zone 'UTC')::date, 'end', ((next_day at time zone 'UTC') - interval '1 day')::date,
      'previous_start', (prev_start at time zone 'UTC')::date,
      'previous_end', ((prev_end at time zone 'UTC') - interval '1 day')::date),
    'currency', 'USD',
    'spend', t.spend,
    'previous_spend', t.previous,
    'spend_change_pct', case when t.previous > 0 then round((t.spend - t.previous) / t.previous * 100, 2) end,
    'requests', t.requests,
    'errors', t.errors,
    'active_providers', t.providers,
    'pending_recommendations', (
      select count(*) from public.recommendations r
      where r.status in ('open', 'under_review') and (org is null or r.org_id = org)),
    'potential_monthly_savings', (
      select coalesce(sum(r.estimated_monthly_savings), 0) from public.recommendations r
      where r.status in ('open', 'under_review') and (org is null or r.org_id = org)),
    'active_alerts', (
      select count(*) from public.alert_events a where a.status <> 'resolved' and (org is null or a.org_id = org)),
    'spend_by_day', (
      select jsonb_agg(jsonb_build_object('date', (g.day at time zone 'UTC')::date,
                                          'cost_usd', coalesce(x.cost_usd, 0), 'requests', coalesce(x.requests, 0))
                       order by g.day)
      from generate_series(month_start, next_day - interval '1 day', interval '1 day') g(day)
      left join days x on x.bucket = g.day),
    'spend_by_provider', (
      select coalesce(jsonb_agg(jsonb_build_object('provider', x.key, 'cost_usd', x.cost_usd, 'requests', x.requests)
                                order by x.cost_usd desc, x.key), '[]')
      from sums x where x.grouped_by = 'provider'),
    'top_teams', (
      select coalesce(jsonb_agg(jsonb_build_object('team', x.key, 'cost_usd', x.cost_usd, 'requests', x.requests)
                                order by x.cost_usd desc, x.key), '[]')
      from (select * from sums x where x.grouped_by = 'team' and x.key is not null
            order by x.cost_usd desc, x.key limit 5) x),
    'top_features', (
      select coalesce(jsonb_agg(jsonb_build_object('feature', x.key, 'cost_usd', x.cost_usd, 'requests', x.requests)
                                order by x.cost_usd desc, x.key), '[]')
      from (select * from sums x where x.grouped_by = 'feature' and x.key is not null
            order by x.cost_usd desc, x.key limit 5) x),
    'top_api_keys', (
      select coalesce(jsonb_agg(jsonb_build_object('api_key_id', x.key::uuid, 'name', k.name, 'prefix', k.prefix,
                                                   'cost_usd', x.cost_usd, 'requests', x.requests)
                                order by x.cost_usd desc, x.key), '[]')
      from (select * from sums x where x.grouped_by = 'api_key_id' and x.key is not null
            order by x.cost_usd desc, x.key limit 5) x
      left join public.api_keys k on k.id = x.key::uuid),
    'top_users', (
      select coalesce(jsonb_agg(jsonb_build_object('end_user_id', e.end_user_id, 'cost_usd', e.cost_usd,
                                                   'requests', e.requests)
                                order by e.cost_usd desc, e.end_user_id), '[]')
      from private.end_user_summary(month_start, month_start + interval '1 month', org, 5) e))
  into result
  from totals t;
  return result;
end
$$;
comment on function public.dashboard_overview(uuid, timestamptz) is
  'GET /dashboard/overview: month-to-date spend and its change against the same days of the previous month, '
  'requests, active providers, pending recommendations, active alerts, spend by day and provider, top teams, '
  'features, API keys and end users (UTC).';

-- ---------------------------------------------------------------- grants
revoke all on function private.usage_dimensions(), private.usage_sources_sql(text, text, boolean),
  private.usage_overview_sums(timestamptz, timestamptz, timestamptz, uuid),
  private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text, uuid, text, boolean,
                        boolean),
  private.end_user_summary(timestamptz, timestamptz, uuid, integer),
  public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text),
  public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text, uuid, text),
  public.dashboard_overview(uuid, timestamptz) from public;
grant execute on function private.usage_dimensions(), private.usage_sources_sql(text, text, boolean),
  private.usage_overview_sums(timestamptz, timestamptz, timestamptz, uuid),
  private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text, uuid, text, boolean,
                        boolean),
  private.end_user_summary(timestamptz, timestamptz, uuid, integer),
  public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text),
  public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text, uuid, text),
  public.dashboard_overview(uuid, timestamptz) to authenticated, tokentra_analyst, service_role;
