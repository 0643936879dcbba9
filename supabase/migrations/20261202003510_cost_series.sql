-- GET /costs by end user, and time series without holes.
--
-- End users are too many to be a dimension of the usage rollups (their own rollups carry no other
-- dimension), so a breakdown that groups or filters by end_user_id sums the raw rows: exact, always
-- fresh, and bounded to 31 days so its cost stays that of one month of one organization's rows.
-- A chart needs a point for every bucket: zero_filled adds the empty buckets of every series.

-- ---------------------------------------------------------------- raw breakdown
create function public.cost_breakdown_raw(
  start_date date, end_date date, group_by text[] default '{}', granularity text default 'total',
  org uuid default null, team text default null, project text default null, feature text default null,
  model text default null, provider text default null, api_key uuid default null, status text default null,
  canonical_model text default null, end_user_id text default null)
returns jsonb
language plpgsql stable set search_path = '' as $$
declare
  dims constant text[] := private.usage_dimensions() || array['end_user_id'];
  filter_values constant jsonb := jsonb_build_object(
    'org_id', org, 'team', team, 'project', project, 'feature', feature, 'model', model, 'provider', provider,
    'api_key_id', api_key, 'status', status, 'canonical_model', canonical_model, 'end_user_id', end_user_id);
  bucket_expr text;
  select_dims text := '';
  group_dims text := '';
  filters text := '';
  d text;
  result jsonb;
begin
  if granularity is null or granularity not in ('total', 'hour', 'day') then
    raise exception 'granularity: must be total, hour or day' using errcode = '22023';
  end if;
  if start_date is null or end_date is null or end_date < start_date then
    raise exception 'end_date: must not be before start_date' using errcode = '22023';
  end if;
  if end_date - start_date + 1 > 31 then
    raise exception 'end_date: a breakdown by end user reads raw rows and holds at most 31 days'
      using errcode = '22023';
  end if;
  if not coalesce(group_by, '{}') <@ dims then
    raise exception 'group_by: may only name %', array_to_string(dims, ', ') using errcode = '22023';
  end if;
  bucket_expr := case granularity when 'total' then 'null::timestamptz'
                                  else format('date_trunc(%L, u.occurred_at, %L)', granularity, 'UTC') end;
  foreach d in array dims loop
    if d = any (coalesce(group_by, '{}')) then
      select_dims := select_dims || format(', %L, u.%I', d, d);
      group_dims := group_dims || format(', u.%I', d);
    end if;
    -- Every value travels as the one jsonb parameter $3; identifiers come only from dims.
    if filter_values ->> d is not null then
      filters := filters || format(' and u.%I::text = ($3 ->> %L)', d, d);
    end if;
  end loop;
  execute format($q$
    select coalesce(jsonb_agg(
             jsonb_strip_nulls(jsonb_build_object(
               'date', case when $4 = 'day' then (g.bucket at time zone 'UTC')::date end,
               'hour', case when $4 = 'hour' then g.bucket end))
             || g.dims
             || jsonb_build_object(
               'total_cost', g.cost_usd, 'total_requests', g.requests, 'total_input_tokens', g.input_tokens,
               'total_output_tokens', g.output_tokens, 'total_cached_tokens', g.cached_tokens,
               'total_cache_write_tokens', g.cache_write_tokens, 'total_reasoning_tokens', g.reasoning_tokens,
               'total_errors', g.errors, 'total_timeouts', g.timeouts, 'total_rate_limited', g.rate_limited,
               'total_retries', g.retries, 'total_response_cache_hits', g.cache_hits, 'total_cache_hits', g.cache_hits,
               'unpriced_requests', g.unpriced)
             order by g.bucket, g.cost_usd desc), '[]'::jsonb)
    from (
      select %1$s as bucket, jsonb_build_object(%2$s) as dims, count(*) as requests,
             count(*) filter (where u.status <> 'success') as errors, count(*) filter (where u.is_timeout) as timeouts,
             count(*) filter (where u.is_rate_limited) as rate_limited, coalesce(sum(u.retry_count), 0) as retries,
             count(*) filter (where u.cache_hit) as cache_hits, count(*) filter (where not u.priced) as unpriced,
             sum(u.input_tokens) as input_tokens, sum(u.output_tokens) as output_tokens,
             sum(u.cached_tokens) as cached_tokens, sum(u.cache_write_tokens) as cache_write_tokens,
             sum(u.reasoning_tokens) as reasoning_tokens, coalesce(sum(u.cost_usd), 0) as cost_usd
      from public.usage_records u
      where u.occurred_at >= $1 and u.occurred_at < $2 %3$s
      group by 1 %4$s
    ) g $q$,
    bucket_expr, ltrim(select_dims, ', '), filters, group_dims)
  into result
  using start_date::timestamp at time zone 'UTC', (end_date + 1)::timestamp at time zone 'UTC', filter_values,
        granularity;
  return jsonb_build_object(
    'data', result,
    'meta', jsonb_build_object(
      'start_date', start_date, 'end_date', end_date, 'currency', 'USD', 'granularity', granularity,
      'group_by', to_jsonb(coalesce(group_by, '{}')), 'source', 'raw',
      'deprecated', jsonb_build_object('total_cache_hits', 'use total_response_cache_hits (same value)')));
end
$$;
comment on function public.cost_breakdown_raw(date, date, text[], text, uuid, text, text, text, text, text, uuid, text,
                                              text, text) is
  'GET /costs from raw usage rows (at most 31 days), for breakdowns the rollups cannot answer: by or filtered by '
  'end_user_id. Same row keys as cost_breakdown; runs under the caller''s RLS.';

-- ---------------------------------------------------------------- zero filling
-- `result` is {"data": [...], ...} with one point per bucket that had usage, each point holding its
-- bucket under bucket_key, the grouped dimensions under `dims` and metrics. The answer holds a point
-- for every bucket of [start_at, end_at) in steps of `step` for every series (each distinct value of
-- `dims` seen; the one series when dims is empty), the missing ones being `zero` (bucket and dims
-- added). Buckets are rendered as the points render them: a date for `date`, a timestamp otherwise.
create function private.zero_filled(result jsonb, bucket_key text, start_at timestamptz, end_at timestamptz,
                                    step interval, dims text[], zero jsonb)
returns jsonb
language sql stable set search_path = '' as $$
  with points as (
    select p, (select coalesce(jsonb_object_agg(k, p -> k), '{}'::jsonb) from unnest(dims) k) as key
    from jsonb_array_elements(result -> 'data') p
  ), series as (
    select distinct key from points
    union
    select '{}'::jsonb where coalesce(cardinality(dims), 0) = 0
  ), slots as (
    select g.n, case when bucket_key = 'date' then to_jsonb((g.at at time zone 'UTC')::date) else to_jsonb(g.at) end as b
    from generate_series(start_at, end_at - step, step) with ordinality g(at, n)
  )
  select result || jsonb_build_object('data', coalesce(jsonb_agg(
           coalesce(x.p, jsonb_build_object(bucket_key, sl.b) || s.key || zero)
           order by sl.n, coalesce(x.p, zero) -> 'total_cost' desc, coalesce(x.p, zero) -> 'cost_usd' desc, s.key),
           '[]'::jsonb))
  from slots sl
  cross join series s
  left join points x on x.key = s.key and x.p -> bucket_key = sl.b
$$;
comment on function private.zero_filled(jsonb, text, timestamptz, timestamptz, interval, text[], jsonb) is
  'A {"data": [...]} series answer with a point (zero) for every bucket of every series; see the file header.';

revoke all on function
  public.cost_breakdown_raw(date, date, text[], text, uuid, text, text, text, text, text, uuid, text, text, text),
  private.zero_filled(jsonb, text, timestamptz, timestamptz, interval, text[], jsonb)
  from public;
grant execute on function
  public.cost_breakdown_raw(date, date, text[], text, uuid, text, text, text, text, text, uuid, text, text, text),
  private.zero_filled(jsonb, text, timestamptz, timestamptz, interval, text[], jsonb)
  to authenticated, tokentra_analyst, service_role;
