-- Hourly anomaly detection starts once a series has a week and a day of history (was 72 hours): before
-- every weekday has been seen once, with a day of baseline behind it, the first working day after a quiet
-- weekend reads as news to the detector, so young series raised false alarms on their Mondays. The worker
-- (tokentra_worker.anomalies GRAINS) flags nothing earlier; the API says so.

create or replace function private.history_requirements() returns jsonb
language sql immutable parallel safe set search_path = '' as $$
  select jsonb_build_object(
    'anomalies', jsonb_build_object(
      'hourly_series_hours', 192, 'daily_series_days', 21,
      'note', 'Each series (the organization, and each team, project, feature, model and API key) is checked once '
              'it has 192 hours (a week and a day) of usage (hourly incidents) or 21 days (daily incidents), counted '
              'from its first call.'),
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

create or replace function public.usage_history(org uuid default null, at timestamptz default now())
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
        'hourly_ready', coalesce(first_at <= usage_history.at - interval '192 hours', false),
        'hourly_ready_at', first_at + interval '192 hours',
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
