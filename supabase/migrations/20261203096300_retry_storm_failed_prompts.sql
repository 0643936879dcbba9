-- Retry storms: the calls of prompts that failed at least once, found by one scan, are the only ones
-- sorted by prompt; probing from every failed call for the next call of its prompt cost an index probe
-- per failure, slower where failures are many (a storm, an outage). Same findings.

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
  ), failed_prompts as (
    -- Only a prompt that failed at least once can have been retried: the window below sorts their calls
    -- alone, not every call of the window.
    select distinct r.org_id, r.prompt_hash
    from public.usage_records r
    where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.prompt_hash is not null
      and r.status <> 'success'
  ), retried as (
    select a.*
    from (
      select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
             r.request_id, r.retry_count, coalesce(r.cost_usd, 0) as cost,
             lag(r.status) over by_prompt as previous_status,
             extract(epoch from r.occurred_at - lag(r.occurred_at) over by_prompt) as gap
      from public.usage_records r
      where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.prompt_hash is not null
        and (r.org_id, r.prompt_hash) in (select f.org_id, f.prompt_hash from failed_prompts f)
      window by_prompt as (partition by r.org_id, r.prompt_hash, r.provider, r.canonical_model order by r.occurred_at)
    ) a
    where a.previous_status <> 'success'
      and a.gap <= (select private.detector_param('retry_storm_detection', 'retry_window_seconds'))
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
