-- Time-based optimization: work that runs at the same hours every day (a scheduled job, not a user
-- waiting) can go through the provider's batch API at the batch tier's price (pricing table).

insert into private.detectors (category, function_name, description) values
  ('time_based_optimization', 'private.detect_time_based_optimization',
   'Scheduled work that can wait for the batch API, billed at the batch price.');

insert into private.detector_parameters (category, name, value, description) values
  ('time_based_optimization', 'busiest_hours', 2,
   'How many hours of the day (UTC) the scope''s busiest hours are.'),
  ('time_based_optimization', 'min_share_in_busiest_hours', 0.9,
   'Share of the scope''s calls that must fall in its busiest hours.'),
  ('time_based_optimization', 'min_days_active', 7,
   'Days with calls the scope needs: a schedule recurs.'),
  ('time_based_optimization', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.');

create function private.detect_time_based_optimization(p_orgs uuid[], p_now timestamptz)
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
  ), hours as (
    select u.org_id, coalesce(u.feature, '(none)') as feature, u.provider, u.canonical_model as model,
           extract(hour from u.bucket at time zone 'UTC')::integer as hour, sum(u.requests) as requests
    from analytics.usage_hourly u
    where u.org_id = any (p_orgs) and u.bucket >= (select min(w.since) from w)
    group by 1, 2, 3, 4, 5
  ), ranked as (
    select h.*, row_number() over (partition by h.org_id, h.feature, h.provider, h.model
                                   order by h.requests desc, h.hour) as rank
    from hours h
  ), busiest as (
    select r.org_id, r.feature, r.provider, r.model,
           sum(r.requests) filter (where r.rank <= private.detector_param('time_based_optimization', 'busiest_hours'))
             / sum(r.requests) as share,
           array_agg(r.hour order by r.hour)
             filter (where r.rank <= private.detector_param('time_based_optimization', 'busiest_hours')) as top
    from ranked r
    group by 1, 2, 3, 4
    having sum(r.requests) > 0
  )
  select s.org_id, 'time_based_optimization', 'feature', s.feature, s.model,
         format('Send the scheduled calls of feature %s on %s through the batch API', s.feature, s.model),
         format('%s%% of the feature''s calls run at %s UTC every day: work that can wait for the batch API, '
                'billed at the batch price.', round(b.share * 100),
                (select string_agg(lpad(h::text, 2, '0') || ':00', ', ' order by h) from unnest(b.top) h)),
         s.cost * s.monthly, c.cost_usd * s.monthly,
         'the same tokens repriced at the batch tier''s listed price (pricing table)', 0.7, 'low', 'medium',
         jsonb_build_array('Collect the scheduled job''s requests into a batch file and submit it to the batch API.',
                           'Poll for results; batch jobs complete within 24 hours.'),
         jsonb_build_object('requests', s.requests::bigint, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'busiest_hours_utc', to_jsonb(b.top),
                            'share_in_busiest_hours', round(b.share, 4), 'series', s.series,
                            'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', s.feature, 'model', s.model),
                            'action', jsonb_build_object('type', 'route_to_model', 'provider', s.provider,
                                                         'model', s.model, 'service_tier', 'batch'))
  from scopes s
  join busiest b using (org_id, feature, provider, model)
  cross join lateral private.usage_cost(s.provider, s.model, now(), s.input_tokens::bigint, s.output_tokens::bigint,
                                        s.cached_tokens::bigint, 0, 0, 'batch') c
  where s.days_active >= private.detector_param('time_based_optimization', 'min_days_active')
    and b.share >= private.detector_param('time_based_optimization', 'min_share_in_busiest_hours')
    and (s.cost - c.cost_usd) * s.monthly >= private.detector_param('time_based_optimization', 'min_monthly_savings')
$$;
comment on function private.detect_time_based_optimization(uuid[], timestamptz) is
  'Features whose calls on a model fall min_share_in_busiest_hours into their busiest_hours hours of the day on '
  'min_days_active days or more: the same tokens at the batch tier''s price, per month.';
revoke all on function private.detect_time_based_optimization(uuid[], timestamptz) from public;
grant execute on function private.detect_time_based_optimization(uuid[], timestamptz) to service_role;

