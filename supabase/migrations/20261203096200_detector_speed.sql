-- The batch-timing and retry-storm rules, same findings, cheaper to run over many organizations:
-- batch timing reads hourly buckets and single calls only for the scopes the batch tier would save
-- enough on, and retry storms probe, from each failed call, the next call with its prompt (by
-- organization and time) instead of sorting every call of the window by prompt hash.

create or replace function private.detect_time_based_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
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
    select u.org_id, coalesce(u.feature, '(none)') as feature, u.provider, u.canonical_model as model, u.bucket,
           sum(u.requests) as requests
    from analytics.usage_hourly u
    where u.org_id = any (array(select distinct c.org_id from candidates c))
      and u.bucket >= (select min(w.since) from w)
      and (u.org_id, coalesce(u.feature, '(none)'), u.provider, u.canonical_model)
          in (select c.org_id, c.feature, c.provider, c.model from candidates c)
    group by 1, 2, 3, 4, 5
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

create or replace function private.detect_retry_storm_detection(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
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
  ), failed as (
    select r.org_id, r.prompt_hash, r.provider, r.canonical_model, r.occurred_at,
           r.occurred_at + (select private.detector_param('retry_storm_detection', 'retry_window_seconds'))
                           * interval '1 second' as retry_until
    from public.usage_records r
    where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.prompt_hash is not null
      and r.status <> 'success'
  ), retried as (
    -- The call that comes next with a failed call's prompt, within the retry window: its retry. Probed
    -- from the failures (few) by organization and time instead of sorting every call by prompt.
    select n.*
    from failed f
    cross join lateral (
      select x.org_id, coalesce(x.feature, '(none)') as feature, x.provider, x.canonical_model as model, x.request_id,
             x.retry_count, coalesce(x.cost_usd, 0) as cost, extract(epoch from x.occurred_at - f.occurred_at) as gap
      from public.usage_records x
      where x.org_id = f.org_id and x.occurred_at > f.occurred_at
        and x.occurred_at <= f.retry_until
        and x.prompt_hash = f.prompt_hash and x.provider = f.provider and x.canonical_model = f.canonical_model
      order by x.occurred_at
      limit 1) n
  ), hashed as (
    select a.org_id, a.feature, a.provider, a.model, count(*) as retries, sum(a.cost) as cost,
           (array_agg(a.request_id order by a.gap))[1:5] as samples
    from retried a
    where a.retry_count = 0
    group by 1, 2, 3, 4
  )
  select s.org_id, 'retry_storm_detection', 'feature', s.feature, s.model,
         format('Stop the retry storm of feature %s on %s (%s retries per call)', s.feature, s.model,
                to_char(x.rate, 'FM999,999,990.0')),
         format('%s retries over %s calls: each retry bills the call again.',
                to_char(x.retries, 'FM999,999,999,990'), to_char(s.requests, 'FM999,999,999,990')),
         (s.cost + x.reported_cost) * s.monthly, (s.cost - x.hashed_cost) * s.monthly,
         'retries the client reports times the mean cost of a call, plus the cost of the calls that repeat a '
         'failed call''s prompt within the retry window, per month', 0.65, 'low', 'low',
         jsonb_build_array('Retry with exponential backoff and jitter, at most twice.', 'Do not retry 4xx errors.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'series', s.series,
                            'sample_request_ids', to_jsonb(coalesce(h.samples, '{}'::text[])),
                            'retries', x.retries::bigint, 'reported_retries', s.retries::bigint,
                            'prompt_hash_retries', coalesce(h.retries, 0), 'retry_rate', round(x.rate, 4)),
         jsonb_build_object('conditions', jsonb_build_object('feature', s.feature, 'model', s.model),
                            'action', jsonb_build_object('type', 'rate_limit', 'max_retries', 2))
  from scopes s
  left join hashed h using (org_id, feature, provider, model)
  cross join lateral (
    -- Reported retries are billed attempts the rows do not show (today's cost is higher by them);
    -- hash-found retries are rows of their own, already in today's cost.
    select s.retries + coalesce(h.retries, 0) as retries,
           (s.retries + coalesce(h.retries, 0)) / greatest(s.requests, 1) as rate,
           s.retries * s.cost / greatest(s.requests, 1) as reported_cost, coalesce(h.cost, 0) as hashed_cost,
           (s.retries * s.cost / greatest(s.requests, 1) + coalesce(h.cost, 0)) * s.monthly as wasted) x
  where x.rate >= private.detector_param('retry_storm_detection', 'min_retry_rate')
    and x.wasted >= private.detector_param('retry_storm_detection', 'min_monthly_savings')
$$;
