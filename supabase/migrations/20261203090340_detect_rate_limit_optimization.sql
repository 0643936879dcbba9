-- rate_limit_optimization: a feature whose calls are refused with 429 often enough, and those refused
-- calls were still billed. Savings: the recorded cost of the rate-limited calls, scaled to a month. The
-- suggested client-side limit is the busiest hour of the day's average rate.
insert into private.detectors (category, function_name, description) values
  ('rate_limit_optimization', 'private.detect_rate_limit_optimization',
   'Features with at least min_rate_limited_share of calls refused with 429 that still cost money.');
insert into private.detector_parameters (category, name, value, description) values
  ('rate_limit_optimization', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('rate_limit_optimization', 'min_rate_limited_share', 0.02,
   'Share of the scope''s calls (0..1) that must have been rate-limited.');

create function private.detect_rate_limit_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('rate_limit_optimization', 'min_monthly_savings') as min_savings,
           private.detector_param('rate_limit_optimization', 'min_rate_limited_share') as min_share
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), found as (
    select s.*, w.days, w.monthly, s.rate_limited_calls::numeric / greatest(s.requests, 1) as share,
           s.rate_limited_cost * w.monthly as wasted
      from private.detector_scopes(p_orgs, (select min(w.since) from w)) s
      join w on w.org_id = s.org_id
     cross join p
     where s.rate_limited_calls::numeric / greatest(s.requests, 1) >= p.min_share
       and s.rate_limited_cost * w.monthly >= p.min_savings
  ), rated as (
    -- the busiest hour of the day (requests summed over the window per UTC hour), read for found scopes only
    select f.*, greatest(1, ceil(coalesce(
             (select max(h.requests) from (
                select sum(u.requests) as requests
                  from analytics.usage_hourly u
                 where u.org_id = f.org_id and u.bucket >= (select min(w.since) from w)
                   and coalesce(u.feature, '(none)') = f.feature and u.provider = f.provider
                   and u.canonical_model = f.model
                 group by extract(hour from u.bucket at time zone 'UTC')) h),
             f.requests / greatest(f.days * 24, 1)) / f.days / 60))::bigint as per_minute
      from found f
  )
  select r.org_id, 'rate_limit_optimization', 'feature', r.feature, r.model,
         format('Tune the request rate of feature %s on %s (%s of calls rate-limited)', r.feature, r.model,
                private.fmt_share(r.share)),
         format('%s of %s calls of feature `%s` were refused with 429 and still cost %s USD a month.',
                private.fmt_count(r.rate_limited_calls), private.fmt_count(r.requests), r.feature,
                private.fmt_usd(r.wasted)),
         r.cost * r.monthly, r.cost * r.monthly - r.wasted,
         'the recorded cost of the rate-limited calls, per month',
         0.7, 'low', 'medium',
         jsonb_build_array(
           format('Throttle feature %s client-side to about %s requests a minute (its busiest hour''s average), '
                  'queueing bursts instead of sending them.', r.feature, r.per_minute),
           'Ask the provider for a higher rate-limit tier if the queue grows.',
           'Honour Retry-After instead of retrying at once.'),
         jsonb_build_object('requests', r.requests, 'rate_limited', r.rate_limited_calls,
                            'rate_limited_share', round(r.share, 4),
                            'cost_per_request', r.cost / greatest(r.requests, 1), 'model', r.model,
                            'provider', r.provider, 'series', r.series, 'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', r.feature, 'model', r.model),
                            'action', jsonb_build_object('type', 'rate_limit', 'requests_per_minute', r.per_minute))
    from rated r
$$;
comment on function private.detect_rate_limit_optimization(uuid[], timestamptz) is
  'Recommendations to throttle features whose rate-limited calls were billed.';
revoke all on function private.detect_rate_limit_optimization(uuid[], timestamptz) from public;
grant execute on function private.detect_rate_limit_optimization(uuid[], timestamptz) to service_role;
