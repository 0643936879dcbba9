-- Spend that buys nothing, per feature and model: calls that ended in error, timed out or were
-- cancelled by the client after being billed, and retries (each bills the call again). The savings
-- are what those calls cost, scaled to a month.

insert into private.detectors (category, function_name, description) values
  ('error_reduction', 'private.detect_error_reduction',
   'Calls that ended in error: billed and produced nothing.'),
  ('timeout_cost_analysis', 'private.detect_timeout_cost_analysis',
   'Calls that timed out after being billed for their tokens.'),
  ('abandoned_request_detection', 'private.detect_abandoned_request_detection',
   'Calls the client cancelled after tokens were billed.'),
  ('retry_storm_detection', 'private.detect_retry_storm_detection',
   'Retries: each bills the call again.');

insert into private.detector_parameters (category, name, value, description) values
  ('error_reduction', 'min_error_rate', 0.05,
   'Share of a feature''s calls on a model that must end in error before it is a finding.'),
  ('error_reduction', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.'),
  ('timeout_cost_analysis', 'min_timeout_rate', 0.02,
   'Share of a feature''s calls on a model that must time out before it is a finding.'),
  ('timeout_cost_analysis', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.'),
  ('abandoned_request_detection', 'min_abandon_rate', 0.02,
   'Share of a feature''s calls on a model the client must cancel before it is a finding.'),
  ('abandoned_request_detection', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.'),
  ('retry_storm_detection', 'min_retry_rate', 0.10,
   'Retries per call of a feature on a model before it is a storm.'),
  ('retry_storm_detection', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.');

-- ---------------------------------------------------------------- error_reduction
create function private.detect_error_reduction(p_orgs uuid[], p_now timestamptz)
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
  )
  select s.org_id, 'error_reduction', 'feature', s.feature, s.model,
         format('Fix the %s%% error rate of feature %s on %s', round(x.rate * 100), s.feature, s.model),
         format('%s of %s calls failed; each was billed and produced nothing.',
                to_char(s.errors, 'FM999,999,999,990'), to_char(s.requests, 'FM999,999,999,990')),
         s.cost * s.monthly, s.cost * s.monthly - x.wasted,
         'cost of the calls that ended in error, per month', 0.7, 'low', 'medium',
         jsonb_build_array('Group the errors by error_code (usage_records) and fix the most frequent cause.',
                           'Validate requests client-side before sending them.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'series', s.series,
                            'sample_request_ids', '[]'::jsonb, 'error_rate', round(x.rate, 4),
                            'errors', s.errors::bigint, 'wasted_cost', round(x.wasted, 4)),
         null::jsonb
  from scopes s
  cross join lateral (select s.errors / greatest(s.requests, 1) as rate, s.error_cost * s.monthly as wasted) x
  where x.rate >= private.detector_param('error_reduction', 'min_error_rate')
    and x.wasted >= private.detector_param('error_reduction', 'min_monthly_savings')
$$;
comment on function private.detect_error_reduction(uuid[], timestamptz) is
  'Features whose calls on a model end in error at min_error_rate or more: the failed calls'' cost per month.';

-- ---------------------------------------------------------------- timeout_cost_analysis
create function private.detect_timeout_cost_analysis(p_orgs uuid[], p_now timestamptz)
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
  )
  select s.org_id, 'timeout_cost_analysis', 'feature', s.feature, s.model,
         format('Cut the cost of timeouts of feature %s on %s (%s%% of calls)', s.feature, s.model,
                round(x.rate * 100)),
         format('%s calls timed out after being billed for their tokens.', to_char(s.timeouts, 'FM999,999,999,990')),
         s.cost * s.monthly, s.cost * s.monthly - x.wasted,
         'cost of the calls that timed out, per month', 0.6, 'medium', 'medium',
         jsonb_build_array('Stream the response or lower max_tokens so calls finish within the client timeout.',
                           'Raise the client timeout where the caller can wait.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'series', s.series,
                            'sample_request_ids', '[]'::jsonb, 'timeouts', s.timeouts::bigint,
                            'timeout_rate', round(x.rate, 4), 'wasted_cost', round(x.wasted, 4)),
         null::jsonb
  from scopes s
  cross join lateral (select s.timeouts / greatest(s.requests, 1) as rate, s.timeout_cost * s.monthly as wasted) x
  where x.rate >= private.detector_param('timeout_cost_analysis', 'min_timeout_rate')
    and x.wasted >= private.detector_param('timeout_cost_analysis', 'min_monthly_savings')
$$;
comment on function private.detect_timeout_cost_analysis(uuid[], timestamptz) is
  'Features whose calls on a model time out at min_timeout_rate or more: the timed-out calls'' cost per month.';

-- ---------------------------------------------------------------- abandoned_request_detection
create function private.detect_abandoned_request_detection(p_orgs uuid[], p_now timestamptz)
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
  )
  select s.org_id, 'abandoned_request_detection', 'feature', s.feature, s.model,
         format('Stop paying for abandoned calls of feature %s on %s (%s%% cancelled)', s.feature, s.model,
                round(x.rate * 100)),
         format('%s calls were cancelled by the client after tokens were billed.',
                to_char(s.cancelled, 'FM999,999,999,990')),
         s.cost * s.monthly, s.cost * s.monthly - x.wasted,
         'cost of the calls that ended cancelled, per month', 0.6, 'low', 'medium',
         jsonb_build_array('Stream responses and stop generation (close the stream) when the user leaves.',
                           'Lower max_tokens where users rarely read to the end.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'series', s.series,
                            'sample_request_ids', '[]'::jsonb, 'cancelled', s.cancelled::bigint,
                            'abandon_rate', round(x.rate, 4), 'wasted_cost', round(x.wasted, 4)),
         null::jsonb
  from scopes s
  cross join lateral (select s.cancelled / greatest(s.requests, 1) as rate, s.cancelled_cost * s.monthly as wasted) x
  where x.rate >= private.detector_param('abandoned_request_detection', 'min_abandon_rate')
    and x.wasted >= private.detector_param('abandoned_request_detection', 'min_monthly_savings')
$$;
comment on function private.detect_abandoned_request_detection(uuid[], timestamptz) is
  'Features whose calls on a model are cancelled at min_abandon_rate or more: the cancelled calls'' cost per month.';

-- ---------------------------------------------------------------- retry_storm_detection
create function private.detect_retry_storm_detection(p_orgs uuid[], p_now timestamptz)
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
  )
  select s.org_id, 'retry_storm_detection', 'feature', s.feature, s.model,
         format('Stop the retry storm of feature %s on %s (%s retries per call)', s.feature, s.model,
                to_char(x.rate, 'FM999,999,990.0')),
         format('%s retries over %s calls: each retry bills the call again.',
                to_char(s.retries, 'FM999,999,999,990'), to_char(s.requests, 'FM999,999,999,990')),
         s.cost * s.monthly + x.wasted, s.cost * s.monthly,
         'retries times the mean cost of a call, per month', 0.65, 'low', 'low',
         jsonb_build_array('Retry with exponential backoff and jitter, at most twice.', 'Do not retry 4xx errors.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'series', s.series,
                            'sample_request_ids', '[]'::jsonb, 'retries', s.retries::bigint,
                            'retry_rate', round(x.rate, 4)),
         jsonb_build_object('conditions', jsonb_build_object('feature', s.feature, 'model', s.model),
                            'action', jsonb_build_object('type', 'rate_limit', 'max_retries', 2))
  from scopes s
  cross join lateral (select s.retries / greatest(s.requests, 1) as rate,
                             s.retries * s.cost / greatest(s.requests, 1) * s.monthly as wasted) x
  where x.rate >= private.detector_param('retry_storm_detection', 'min_retry_rate')
    and x.wasted >= private.detector_param('retry_storm_detection', 'min_monthly_savings')
$$;
comment on function private.detect_retry_storm_detection(uuid[], timestamptz) is
  'Features whose calls on a model report min_retry_rate retries per call or more: retries times the mean '
  'cost of a call, per month.';

do $$
declare
  f text;
begin
  foreach f in array array['error_reduction', 'timeout_cost_analysis', 'abandoned_request_detection',
                           'retry_storm_detection'] loop
    execute format('revoke all on function private.%I(uuid[], timestamptz) from public', 'detect_' || f);
    execute format('grant execute on function private.%I(uuid[], timestamptz) to service_role', 'detect_' || f);
  end loop;
end
$$;

