-- Business outcome attribution read the end-user rollup through analytics.end_user_daily, which groups
-- by organization, user and day what the detector then grouped the same way again, and built every user's
-- daily series though only the users found show one. It now sums the rollup, its pending deltas and the
-- raw tail once, and builds series for the users found. Same rule and findings.

create or replace function private.detect_business_outcome_attribution(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' set jit = off as $$
  with w as (
    select * from private.detector_window(p_orgs, p_now)
  ), days as (
    -- The end-user rollup, its pending deltas and the raw tail past the watermark, summed once per
    -- organization, user and day (what analytics.end_user_daily sums, without its regrouping).
    select u.org_id, u.end_user_id, (u.bucket at time zone 'UTC')::date as day, sum(u.requests) as requests,
           sum(u.cost_usd) as cost
    from (
      select d.org_id, d.end_user_id, d.bucket, d.requests, d.cost_usd
        from private.end_user_rollup_daily d
       where d.org_id = any (p_orgs) and d.bucket >= (select min(w.since) from w)
      union all
      select d.org_id, d.end_user_id, pg_catalog.date_trunc('day', d.bucket, 'UTC'), d.requests, d.cost_usd
        from private.end_user_rollup_deltas d
       where d.org_id = any (p_orgs) and d.bucket >= (select min(w.since) from w)
      union all
      select r.org_id, r.end_user_id, pg_catalog.date_trunc('day', r.occurred_at, 'UTC'), 1, coalesce(r.cost_usd, 0)
        from public.usage_records r
       where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w)
         and r.occurred_at >= (select s.watermark from private.usage_rollup_state s) and r.end_user_id is not null
    ) u
    group by 1, 2, 3
    having sum(u.requests) <> 0
  ), users as (
    select d.org_id, d.end_user_id, sum(d.requests) as requests, sum(d.cost) as cost,
           sum(d.cost) / greatest(sum(d.requests), 1) as cpr
    from days d
    group by 1, 2
  ), orgs as (
    select u.org_id, sum(u.cost) as total,
           percentile_cont(0.5) within group (order by u.cpr)::numeric as typical
    from users u
    group by 1
    having count(*) >= private.detector_param('business_outcome_attribution', 'min_users')
  ), found as (
    select u.*, o.total, o.typical, w.monthly, w.days
    from users u
    join orgs o on o.org_id = u.org_id
    join w on w.org_id = u.org_id
    where o.total > 0 and o.typical > 0
      and u.cpr >= private.detector_param('business_outcome_attribution', 'min_cost_ratio') * o.typical
      and u.cost >= private.detector_param('business_outcome_attribution', 'min_share_of_spend') * o.total
      and (u.cost - u.requests * o.typical) * w.monthly
          >= private.detector_param('business_outcome_attribution', 'min_monthly_savings')
  ), series as (
    -- The daily series of the users found only: building it for every user cost more than finding them.
    select d.org_id, d.end_user_id, jsonb_object_agg(d.day::text, round(coalesce(d.cost, 0), 6) order by d.day) as series
    from days d
    join found f on f.org_id = d.org_id and f.end_user_id = d.end_user_id
    group by 1, 2
  )
  select u.org_id, 'business_outcome_attribution', 'end_user', u.end_user_id, 'cost_per_request',
         format('End user %s costs %sx the typical user per request', u.end_user_id, round(u.cpr / u.typical)),
         format('End user %s made %s calls costing %s%% of the organization''s spend, at $%s per call against '
                '$%s for the median user.', u.end_user_id, to_char(u.requests, 'FM999,999,999,990'),
                round(u.cost / u.total * 100), to_char(u.cpr, 'FM999,999,990.0000'),
                to_char(u.typical, 'FM999,999,990.0000')),
         u.cost * u.monthly, u.requests * u.typical * u.monthly,
         'the user''s cost above the median user''s cost per request, per month', 0.5, 'medium', 'medium',
         jsonb_build_array('Check the user''s plan covers this usage; add a per-user quota or price tier.',
                           'Look for automated or abusive use (request ids in the evidence).'),
         jsonb_build_object('requests', u.requests::bigint, 'cost_per_request', u.cpr,
                            'median_cost_per_request', u.typical, 'share_of_spend', round(u.cost / u.total, 4),
                            'series', s.series, 'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('end_user_id', u.end_user_id),
                            'action', jsonb_build_object('type', 'rate_limit', 'max_cost_per_day',
                                                         round(u.typical * u.requests / u.days, 4)))
  from found u
  join series s on s.org_id = u.org_id and s.end_user_id = u.end_user_id
$$;
