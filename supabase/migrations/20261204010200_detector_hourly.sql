-- Batch-tier timing read its candidates' hourly calls through analytics.usage_hourly, which regroups every
-- dimension and merges latency histograms the detector never reads: the largest share of the detectors'
-- time in `tokentra bench engine`. It now reads the hourly rollup's covering index, its pending deltas and
-- the raw tail past the watermark straight (private.detector_hourly), as the daily sums already do. Same
-- rule and findings.

create function private.detector_hourly(p_orgs uuid[], p_since timestamptz)
returns table (org_id uuid, feature text, provider text, model text, bucket timestamptz, requests bigint)
language sql stable parallel safe as $$
  select d.org_id, coalesce(d.feature, '(none)'), d.provider, d.canonical_model, d.bucket, d.requests
    from private.usage_rollup_hourly d
   where d.org_id = any (p_orgs) and d.bucket >= p_since
  union all
  select d.org_id, coalesce(d.feature, '(none)'), d.provider, d.canonical_model,
         pg_catalog.date_trunc('hour', d.bucket, 'UTC'), d.requests
    from private.usage_rollup_deltas d
   where d.org_id = any (p_orgs) and d.bucket >= p_since
  union all
  select r.org_id, coalesce(r.feature, '(none)'), r.provider, r.canonical_model,
         pg_catalog.date_trunc('hour', r.occurred_at, 'UTC'), 1
    from public.usage_records r
   where r.org_id = any (p_orgs) and r.occurred_at >= p_since
     and r.occurred_at >= (select s.watermark from private.usage_rollup_state s)
$$;
comment on function private.detector_hourly(uuid[], timestamptz) is
  'Calls of the given organizations since p_since as the hourly rollup holds them (rollup, pending deltas, raw '
  'tail), per feature (''(none)'' if untagged), provider, canonical model and UTC hour; not summed.';
revoke all on function private.detector_hourly(uuid[], timestamptz) from public;
grant execute on function private.detector_hourly(uuid[], timestamptz) to service_role;

create or replace function private.detect_time_based_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' set jit = off as $$
  with w as (
    select * from private.detector_window(p_orgs, p_now)
  ), scopes as (
    -- The window's sums per feature and model with the month factor; counts as numeric, rates are fractions.
    select s.org_id, s.feature, s.provider, s.model, s.requests::numeric as requests, s.errors::numeric as errors,
           s.timeouts::numeric as timeouts, s.retries::numeric as retries, s.cancelled::numeric as cancelled,
           s.input_tokens, s.output_tokens, s.cached_tokens, s.cost, s.error_cost, s.timeout_cost, s.cancelled_cost,
           s.series, (select count(*) from pg_catalog.jsonb_object_keys(s.series)) as days_active, w.days, w.monthly
      from private.detector_scopes(p_orgs, (select min(w.since) from w)) s
      join w on w.org_id = s.org_id
  ), params as (
    select private.detector_param('time_based_optimization', 'min_share_in_busiest_hours') as min_share,
           private.detector_param('time_based_optimization', 'max_window_hours') as max_hours,
           private.detector_param('time_based_optimization', 'min_days_active') as min_days,
           private.detector_param('time_based_optimization', 'max_day_share') as max_day_share,
           private.detector_param('time_based_optimization', 'max_streamed_share') as max_streamed,
           private.detector_param('time_based_optimization', 'min_tolerated_latency_ms') as min_latency,
           private.detector_param('time_based_optimization', 'max_cancelled_share') as max_cancelled,
           private.detector_param('time_based_optimization', 'min_monthly_savings') as min_savings
  ), candidates as (
    -- Scopes the batch tier would save enough on, seen on enough days: only theirs are read by the hour
    -- and call by call.
    select s.*, c.cost_usd as batch_cost
    from scopes s
    cross join params p
    cross join lateral private.usage_cost(s.provider, s.model, now(), s.input_tokens::bigint, s.output_tokens::bigint,
                                          s.cached_tokens::bigint, 0, 0, 'batch') c
    where s.days_active >= p.min_days and (s.cost - c.cost_usd) * s.monthly >= p.min_savings
  ), buckets as (
    select u.org_id, u.feature, u.provider, u.model, u.bucket, sum(u.requests) as requests
    from private.detector_hourly(array(select distinct c.org_id from candidates c), (select min(w.since) from w)) u
    where (u.org_id, u.feature, u.provider, u.model) in (select c.org_id, c.feature, c.provider, c.model from candidates c)
    group by 1, 2, 3, 4, 5
    having sum(u.requests) <> 0
  ), hours as (
    select b.org_id, b.feature, b.provider, b.model, extract(hour from b.bucket at time zone 'UTC')::integer as hour,
           sum(b.requests) as requests
    from buckets b
    group by 1, 2, 3, 4, 5
  ), ranked as (
    -- Hours busiest first with the running share of calls before each: an hour belongs to the busiest
    -- set while the hours before it hold less than min_share.
    select h.*, coalesce(sum(h.requests) over (partition by h.org_id, h.feature, h.provider, h.model
                                               order by h.requests desc, h.hour
                                               rows between unbounded preceding and 1 preceding), 0)
                / sum(h.requests) over (partition by h.org_id, h.feature, h.provider, h.model) as before
    from hours h
  ), busiest as (
    select r.org_id, r.feature, r.provider, r.model, array_agg(r.hour order by r.hour) as top,
           sum(r.requests) as requests
    from ranked r, params p
    where r.before < p.min_share
    group by 1, 2, 3, 4
  ), recurring as (
    -- How the calls in the busiest hours spread over days.
    select d.org_id, d.feature, d.provider, d.model, count(*) as days, max(d.requests) / max(d.total) as max_day_share
    from (
      select x.org_id, x.feature, x.provider, x.model, (x.bucket at time zone 'UTC')::date as day,
             sum(x.requests) as requests, max(b.requests) as total
      from buckets x
      join busiest b using (org_id, feature, provider, model)
      where extract(hour from x.bucket at time zone 'UTC')::integer = any (b.top)
      group by 1, 2, 3, 4, 5
    ) d
    group by 1, 2, 3, 4
  ), waiting as (
    -- Whether anyone waits on the calls: streamed, cancelled, and the share of the others slower than
    -- min_tolerated_latency_ms (at least half: the median is that slow). Counts, not a sort of latencies.
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           count(*) filter (where r.is_streaming)::numeric / count(*) as streamed,
           count(*) filter (where r.status = 'cancelled')::numeric / count(*) as cancelled,
           count(*) filter (where not r.is_streaming and r.latency_ms >= p.min_latency)::numeric
             / nullif(count(*) filter (where not r.is_streaming and r.latency_ms is not null), 0) as slow_share
    from public.usage_records r, params p
    where r.org_id = any (array(select distinct c.org_id from candidates c))
      and r.occurred_at >= (select min(w.since) from w)
      and (r.org_id, coalesce(r.feature, '(none)'), r.provider, r.canonical_model)
          in (select c.org_id, c.feature, c.provider, c.model from candidates c)
    group by 1, 2, 3, 4
  ), batchable as (
    select s.*, b.top, b.requests / greatest(s.requests, 1) as share, wt.slow_share,
           cardinality(b.top) <= p.max_hours and r.days >= p.min_days and r.max_day_share <= p.max_day_share
             as scheduled
    from candidates s
    cross join params p
    join busiest b using (org_id, feature, provider, model)
    join recurring r using (org_id, feature, provider, model)
    join waiting wt using (org_id, feature, provider, model)
    where wt.streamed <= p.max_streamed
      and ((cardinality(b.top) <= p.max_hours and r.days >= p.min_days and r.max_day_share <= p.max_day_share)
           or (wt.slow_share >= 0.5 and wt.cancelled <= p.max_cancelled))
  )
  select s.org_id, 'time_based_optimization', 'feature', s.feature, s.model,
         format('Send the %s calls of feature %s on %s through the batch API',
                case when s.scheduled then 'scheduled' else 'unhurried' end, s.feature, s.model),
         case when s.scheduled
           then format('%s%% of the feature''s calls run at %s UTC, on %s days: work that can wait for the batch '
                       'API, billed at the batch price.', round(s.share * 100),
                       (select string_agg(lpad(h::text, 2, '0') || ':00', ', ' order by h) from unnest(s.top) h),
                       s.days_active)
           else format('%s%% of the feature''s calls take %s s or more, none is streamed and almost none is '
                       'cancelled: nobody waits on them, so they can wait for the batch API, billed at the batch '
                       'price.', round(s.slow_share * 100), round(p.min_latency / 1000)) end,
         s.cost * s.monthly, s.batch_cost * s.monthly,
         'the same tokens repriced at the batch tier''s listed price (pricing table)',
         case when s.scheduled then 0.7 else 0.5 end, 'low', 'medium',
         jsonb_build_array('Collect the scheduled job''s requests into a batch file and submit it to the batch API.',
                           'Poll for results; batch jobs complete within 24 hours.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'busiest_hours_utc', to_jsonb(s.top),
                            'share_in_busiest_hours', round(s.share, 4), 'scheduled', s.scheduled,
                            'slow_share', round(s.slow_share, 4), 'series', s.series, 'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', s.feature, 'model', s.model),
                            'action', jsonb_build_object('type', 'route_to_model', 'provider', s.provider,
                                                         'model', s.model, 'service_tier', 'batch'))
  from batchable s
  cross join params p
$$;


-- Every detector runs without JIT whoever calls it (the detectors redefined after that rule was first
-- applied had lost it; the job turns JIT off for its own transaction either way).
do $$
declare
  f text;
begin
  for f in select d.function_name from private.detectors d loop
    execute format('alter function %s(uuid[], timestamptz) set jit = off', f);
  end loop;
end
$$;
