-- Short histories said out loud, and cost per trace or session:
--   * anomalies and recommendations list what history they need and how much each organization has
--     (meta.history), so an empty list on day one reads "not yet: N more hours" instead of "nothing";
--   * a budget's projected spend is its period-end forecast (the forecasts job, one method for the
--     organization and every budget, each on its scope's own series), so it agrees with /forecast;
--   * trace_costs sums raw rows per trace or session over a bounded range.

-- ---------------------------------------------------------------- history
-- Thresholds of the jobs (tokentra_worker.anomalies GRAINS; the recommendations' 30-day window and the
-- minimums of their detectors), as data the API can show.
create function private.history_requirements() returns jsonb
language sql immutable parallel safe set search_path = '' as $$
  select jsonb_build_object(
    'anomalies', jsonb_build_object(
      'hourly_series_hours', 72, 'daily_series_days', 21,
      'note', 'Each series (the organization, and each team, project, feature, model and API key) is checked once '
              'it has 72 hours of usage (hourly incidents) or 21 days (daily incidents), counted from its first call.'),
    'recommendations', jsonb_build_object(
      'window_days', 30, 'reliable_after_days', 7,
      'detector_minimums', jsonb_build_object(
        'business_outcome_attribution_end_users', 5, 'quality_cost_pareto_scored_calls_per_model', 30,
        'output_format_measured_answers', 50, 'minimum_monthly_savings_usd', 1),
      'note', 'Detectors read the last 30 days and extrapolate what they saw to a month; under 7 days of usage the '
              'estimates miss the weekly cycle and few patterns qualify.'),
    'forecasts', jsonb_build_object(
      'seasonal_model_days', 14,
      'note', 'With 14 days or more, a combination of seasonal log-spend models; before that, the recent daily '
              'level (today''s run rate on day one) with intervals widened for how little has been seen.'))
$$;
comment on function private.history_requirements() is
  'How much usage history anomalies, recommendations and forecasts need, as the jobs apply it.';

-- Each organization the caller reads: its first call, how long ago, and whether each job has enough.
-- The first call comes from the hourly rollup and its pending deltas (one index probe each), and from
-- raw rows past the watermark; the watermark is inlined as a constant so planning prunes the raw
-- table's day partitions (planning all of them costs more than the look-up).
create function public.usage_history(org uuid default null, at timestamptz default now())
returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
  raw_first text := format('select min(u.occurred_at) from public.usage_records u where u.org_id = $1 and '
                           'u.occurred_at >= %L', wm);
  o record;
  first_at timestamptz;
  raw_at timestamptz;
  out jsonb := '[]';
begin
  for o in select x.id from public.organizations x where usage_history.org is null or x.id = usage_history.org
           order by x.id loop
    execute raw_first into raw_at using o.id;
    first_at := least((select min(h.bucket) from private.usage_rollup_hourly h where h.org_id = o.id),
                      (select min(d.bucket) from private.usage_rollup_deltas d where d.org_id = o.id and d.requests > 0),
                      raw_at);
    out := out || jsonb_build_object(
      'org_id', o.id,
      'first_usage_at', first_at,
      'history_hours', round(extract(epoch from usage_history.at - first_at)::numeric / 3600, 1),
      'anomalies', jsonb_build_object(
        'hourly_ready', coalesce(first_at <= usage_history.at - interval '72 hours', false),
        'hourly_ready_at', first_at + interval '72 hours',
        'daily_ready', coalesce(first_at <= usage_history.at - interval '21 days', false),
        'daily_ready_at', first_at + interval '21 days'),
      'recommendations', jsonb_build_object(
        'days_seen', coalesce(least(round(extract(epoch from usage_history.at - first_at)::numeric / 86400, 2), 30), 0),
        'reliable', coalesce(first_at <= usage_history.at - interval '7 days', false),
        'reliable_at', first_at + interval '7 days'),
      'forecasts', jsonb_build_object(
        'seasonal', coalesce(first_at <= usage_history.at - interval '14 days', false),
        'seasonal_at', first_at + interval '14 days'));
  end loop;
  return out;
end
$$;
comment on function public.usage_history(uuid, timestamptz) is
  'Per organization the caller reads: first call, hours of history, and whether anomalies (hourly/daily), '
  'recommendations and seasonal forecasts have the history they need, with when they will (null: no usage yet).';

-- The lists answer with the same data as before and meta: the requirements and each organization's history.
create or replace function public.anomaly_list(org uuid default null, status text default null, metric text default null,
                                               dimension text default null, severity text default null,
                                               since timestamptz default null, max_rows integer default 100)
returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce(jsonb_agg(to_jsonb(x) order by x.window_start desc), '[]'::jsonb),
    'meta', jsonb_build_object('needs', private.history_requirements() -> 'anomalies',
                               'history', public.usage_history(anomaly_list.org)))
  from (
    select a.id, a.org_id, a.metric, a.kind, a.grain, a.severity, a.dimension, a.dimension_value,
           a.window_start, a.window_end, a.expected_value, a.actual_value, a.money_involved, a.score, a.status,
           a.details, a.created_at, a.updated_at
    from public.anomalies a
    where (org is null or a.org_id = org)
      and (anomaly_list.status is null or a.status = anomaly_list.status)
      and (anomaly_list.metric is null or a.metric = anomaly_list.metric)
      and (anomaly_list.dimension is null or a.dimension = anomaly_list.dimension)
      and (anomaly_list.severity is null or a.severity = anomaly_list.severity)
      and (since is null or a.window_start >= since)
    order by a.window_start desc
    limit least(greatest(max_rows, 1), 1000)
  ) x
$$;
comment on function public.anomaly_list(uuid, text, text, text, text, timestamptz, integer) is
  'Anomalies the caller may read, newest first, filtered; {"data": [...], "meta": {"needs", "history"}}: how much '
  'history detection needs and how much each organization has.';

create or replace function public.recommendation_list(org uuid default null, status text default null,
                                                      category text default null, scope_type text default null,
                                                      min_savings numeric default null, max_rows integer default 100)
returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce(jsonb_agg(to_jsonb(x) order by x.estimated_monthly_savings desc nulls last, x.id), '[]'::jsonb),
    'meta', jsonb_build_object('needs', private.history_requirements() -> 'recommendations',
                               'history', public.usage_history(recommendation_list.org)))
  from (
    select r.* from public.recommendations r
    where (org is null or r.org_id = org)
      and (recommendation_list.status is null or r.status = recommendation_list.status)
      and (recommendation_list.category is null or r.category = recommendation_list.category)
      and (recommendation_list.scope_type is null or r.scope_type = recommendation_list.scope_type)
      and (min_savings is null or r.estimated_monthly_savings >= min_savings)
    order by r.estimated_monthly_savings desc nulls last, r.id
    limit least(greatest(max_rows, 1), 1000)
  ) x
$$;
comment on function public.recommendation_list(uuid, text, text, text, numeric, integer) is
  'Recommendations the caller may read, largest estimated monthly savings first, filtered; meta says how much '
  'history the detectors need and how much each organization has.';

revoke all on function private.history_requirements(), public.usage_history(uuid, timestamptz) from public;
grant execute on function private.history_requirements(), public.usage_history(uuid, timestamptz)
  to authenticated, service_role;

-- ---------------------------------------------------------------- one forecast per scope
-- The series the forecasts job models for any scope: the scope's spend per local day, exactly what a
-- budget of that scope counts (budget_spend: rollups, unpriced calls at the conservative price). The
-- organization's month-end forecast is the forecast of scope `organization`, so it and an organization
-- budget of the same month are one computation on one series.
create function private.scope_daily_spend(org uuid, scope_type text, scope_id text, days integer,
                                          at timestamptz default now())
returns table (day date, spend numeric)
language sql stable set search_path = '' as $$
  select s.day, s.spend
    from private.budget_daily_spend(
           -- built by name, so columns budgets gains later do not break it
           jsonb_populate_record(null::public.budgets, jsonb_build_object(
             'org_id', scope_daily_spend.org, 'name', 'forecast scope', 'amount', 1, 'currency', 'USD',
             'period', 'monthly', 'week_start', 1, 'scope_type', scope_daily_spend.scope_type,
             'scope_id', scope_daily_spend.scope_id, 'enabled', true)),
           scope_daily_spend.days, scope_daily_spend.at) s
$$;
comment on function private.scope_daily_spend(uuid, text, text, integer, timestamptz) is
  'Spend per local day of any budget scope of an organization (organization, team, project, ...), the last '
  '`days` whole days and today so far: the series forecasts model.';
revoke all on function private.scope_daily_spend(uuid, text, text, integer, timestamptz) from public;
grant execute on function private.scope_daily_spend(uuid, text, text, integer, timestamptz) to service_role;

-- A budget's projected spend is its current period's forecast (never below what is spent already);
-- until the forecasts job has forecast the period (it runs hourly), the run rate, labelled as such.
create or replace view public.budget_status with (security_invoker = true) as
  select b.id, b.org_id, b.name, b.amount, b.currency, b.period, b.week_start, b.scope_type, b.scope_id,
         b.alert_thresholds, b.hard_limit, b.enabled, b.created_at, b.updated_at, s.period_start, s.period_end,
         s.current_spend, s.reserved, s.remaining, s.status, s.crossed_thresholds,
         coalesce(greatest(f.forecast, s.current_spend), s.projected_spend) as projected_spend,
         case when f.forecast is null then 'run rate (no forecast of this period yet)' else f.method end
           as projected_method,
         f.lower_80 as projected_lower_80, f.upper_80 as projected_upper_80, f.generated_at as projected_at
    from public.budgets b
   cross join lateral private.budget_state(b) s
    left join public.spend_forecasts f on f.budget_id = b.id and f.period_start = s.period_start;
comment on view public.budget_status is
  'Budgets with their live status: current period, spend (from the rollups), reserved, remaining, status, '
  'crossed thresholds, and projected spend at period end: the period''s forecast (the same method and numbers '
  'as GET /forecast), or the run rate until the first forecast of the period.';

-- ---------------------------------------------------------------- cost per trace or session
-- Raw rows of the caller's organizations (RLS) in [start_at, end_at), at most 31 days (the table is
-- partitioned by day: the range bounds the partitions read), grouped by trace_id or session_id.
create function public.trace_costs(start_at timestamptz, end_at timestamptz, group_by text default 'trace',
                                   org uuid default null, trace_id text default null, session_id text default null,
                                   max_rows integer default 100)
returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
  key text;
  result jsonb;
begin
  if group_by is null or group_by not in ('trace', 'session') then
    raise exception 'group_by: must be trace or session' using errcode = '22023';
  end if;
  if start_at is null or end_at is null or end_at <= start_at then
    raise exception 'end: must be after start' using errcode = '22023';
  end if;
  if end_at - start_at > interval '31 days' then
    raise exception 'end: costs per trace or session read raw rows; the range holds at most 31 days'
      using errcode = '22023';
  end if;
  if max_rows is null or max_rows < 1 or max_rows > 1000 then
    raise exception 'limit: must be between 1 and 1000' using errcode = '22023';
  end if;
  key := case group_by when 'trace' then 'trace_id' else 'session_id' end;
  -- key comes from the two constants above; values are parameters
  execute format($q$
    select coalesce(jsonb_agg(to_jsonb(g) order by g.cost_usd desc, g.%1$I), '[]'::jsonb)
    from (
      select u.%1$I, u.org_id, count(*) as requests, count(*) filter (where u.status <> 'success') as errors,
             coalesce(sum(u.cost_usd), 0) as cost_usd, count(*) filter (where not u.priced) as unpriced_requests,
             sum(u.input_tokens) as input_tokens, sum(u.output_tokens) as output_tokens,
             sum(u.cached_tokens) as cached_tokens, min(u.occurred_at) as first_call_at,
             max(u.occurred_at) as last_call_at,
             (array_agg(distinct u.canonical_model order by u.canonical_model))[1:20] as models,
             count(distinct u.%2$I) filter (where u.%2$I is not null) as %3$I
        from public.usage_records u
       where u.occurred_at >= $1 and u.occurred_at < $2 and u.%1$I is not null
         and ($3::uuid is null or u.org_id = $3) and ($4::text is null or u.trace_id = $4)
         and ($5::text is null or u.session_id = $5)
       group by u.%1$I, u.org_id
       order by coalesce(sum(u.cost_usd), 0) desc, u.%1$I
       limit $6
    ) g $q$, key, case key when 'trace_id' then 'session_id' else 'trace_id' end,
    case key when 'trace_id' then 'sessions' else 'traces' end)
  into result
  using start_at, end_at, org, trace_id, session_id, max_rows;
  return jsonb_build_object(
    'data', result,
    'meta', jsonb_build_object('start', start_at, 'end', end_at, 'group_by', group_by, 'currency', 'USD',
                               'limit', max_rows, 'source', 'raw'));
end
$$;
comment on function public.trace_costs(timestamptz, timestamptz, text, uuid, text, text, integer) is
  'Cost per trace or per session (group_by trace|session) from raw usage rows of [start_at, end_at), at most 31 '
  'days, under the caller''s RLS: requests, errors, cost, tokens, first and last call, models; most expensive first.';
revoke all on function public.trace_costs(timestamptz, timestamptz, text, uuid, text, text, integer) from public;
grant execute on function public.trace_costs(timestamptz, timestamptz, text, uuid, text, text, integer)
  to authenticated, tokentra_analyst, service_role;
