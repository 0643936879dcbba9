-- Metric alert rules measure a sliding window, the last window_minutes before the evaluation, instead of
-- the UTC hours since the current one began. The hour-aligned window held only the seconds since the hour
-- turned: just past HH:00 a spend spike of a minute before read as $0, and an open event resolved at each
-- turn of the hour and was raised again later in it.
--
-- The window and the baseline still read the hourly rollups, so the cost stays a handful of buckets per
-- rule. The hour in progress counts whole: it holds the newest usage, and a burst in its last minutes must
-- not be diluted by the quiet start of the hour (a window shorter than the part of the hour that has passed
-- therefore reads all of that part, as before). A finished hour the window only partly covers counts in
-- proportion to the part covered, as if its usage were spread evenly over it. A latency percentile merges
-- the histograms of every hour the window touches.

-- The share of the UTC hour starting at b0 that falls inside [s, e].
create function private.hour_share(b0 timestamptz, s timestamptz, e timestamptz)
returns numeric
language sql immutable parallel safe set search_path = '' as $$
  select greatest(0, extract(epoch from least(b0 + interval '1 hour', e) - greatest(b0, s))) / 3600
$$;
comment on function private.hour_share(timestamptz, timestamptz, timestamptz) is
  'Fraction of the hour starting at b0 inside [s, e], to prorate an hourly bucket.';

create or replace function private.alert_rule_measure(rule public.alert_rules, at timestamptz default now())
returns table (value numeric, baseline numeric, requests bigint)
language plpgsql stable rows 1 set search_path = '' set jit = off as $$
declare
  c jsonb := rule.condition;
  win interval := make_interval(secs => 60 * greatest(1, coalesce((c ->> 'window_minutes')::numeric, 60)));
  base_hours integer := coalesce((c ->> 'baseline_hours')::integer, 24);
  since timestamptz := at - win;
  base_since timestamptz := since - make_interval(hours => base_hours);
begin
  return query
  with rows as (
    select v.cost_usd, v.errors, v.requests, v.latency_histogram,
           case when v.bucket + interval '1 hour' > at then 1
                else private.hour_share(v.bucket, since, at) end as w,
           case when v.bucket + interval '1 hour' > at then 0
                else private.hour_share(v.bucket, base_since, since) end as b
      from analytics.usage_hourly v
     where v.org_id = rule.org_id and v.bucket >= date_trunc('hour', base_since, 'UTC') and v.bucket <= at
       and (c ->> 'provider' is null or v.provider = c ->> 'provider')
       and (c ->> 'model' is null or v.model = c ->> 'model')
       and (c ->> 'team' is null or v.team = c ->> 'team')
       and (c ->> 'project' is null or v.project = c ->> 'project')
       and (c ->> 'feature' is null or v.feature = c ->> 'feature')
  )
  select case rule.type
           when 'spend_spike' then round(coalesce(sum(r.cost_usd * r.w), 0), 6)
           when 'error_rate' then round(100.0 * coalesce(sum(r.errors * r.w), 0) / nullif(sum(r.requests * r.w), 0), 4)
           when 'latency' then analytics.latency_percentile(
                                 analytics.merge_latency(r.latency_histogram) filter (where r.w > 0),
                                 coalesce((c ->> 'percentile')::float8, 95) / 100)::numeric
         end,
         -- spend_spike's baseline: mean spend per window over the baseline hours before the window
         round(coalesce(sum(r.cost_usd * r.b), 0) / base_hours * (extract(epoch from win) / 3600), 6),
         round(coalesce(sum(r.requests * r.w), 0))::bigint
    from rows r;
end
$$;
comment on function private.alert_rule_measure(public.alert_rules, timestamptz) is
  'Current value of a spend_spike (USD in window), error_rate (% of requests) or latency (ms at percentile) rule '
  'over the window_minutes before at (the hour in progress whole, finished hours the window partly covers in '
  'proportion), with the spend baseline per window and the request count.';

revoke all on function private.hour_share(timestamptz, timestamptz, timestamptz) from public;
