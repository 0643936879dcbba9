-- Business outcome attribution: cost per end user. An end user whose calls cost several times the
-- organization's typical user per call, and who carries a large share of its spend, is a pricing or
-- quota decision (or abuse); the savings are what that user costs above the typical cost per call.

insert into private.detectors (category, function_name, description) values
  ('business_outcome_attribution', 'private.detect_business_outcome_attribution',
   'End users whose calls cost several times the typical user''s and carry a large share of spend.');

insert into private.detector_parameters (category, name, value, description) values
  ('business_outcome_attribution', 'min_cost_ratio', 5,
   'The user''s cost per call against the median user''s.'),
  ('business_outcome_attribution', 'min_share_of_spend', 0.2,
   'Share of the organization''s spend the user must carry.'),
  ('business_outcome_attribution', 'min_users', 5,
   'End users an organization needs before a typical user means something.'),
  ('business_outcome_attribution', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.');

create function private.detect_business_outcome_attribution(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with w as (
    select * from private.detector_window(p_orgs, p_now)
  ), days as (
    select u.org_id, u.end_user_id, (u.bucket at time zone 'UTC')::date as day, sum(u.requests) as requests,
           sum(u.cost_usd) as cost
    from analytics.end_user_daily u
    where u.org_id = any (p_orgs) and u.bucket >= (select min(w.since) from w)
    group by 1, 2, 3
  ), users as (
    select d.org_id, d.end_user_id, sum(d.requests) as requests, sum(d.cost) as cost,
           sum(d.cost) / greatest(sum(d.requests), 1) as cpr,
           jsonb_object_agg(d.day::text, round(coalesce(d.cost, 0), 6) order by d.day) as series
    from days d
    group by 1, 2
  ), orgs as (
    select u.org_id, sum(u.cost) as total,
           percentile_cont(0.5) within group (order by u.cpr)::numeric as typical
    from users u
    group by 1
    having count(*) >= private.detector_param('business_outcome_attribution', 'min_users')
  )
  select u.org_id, 'business_outcome_attribution', 'end_user', u.end_user_id, 'cost_per_request',
         format('End user %s costs %sx the typical user per request', u.end_user_id, round(u.cpr / o.typical)),
         format('End user %s made %s calls costing %s%% of the organization''s spend, at $%s per call against '
                '$%s for the median user.', u.end_user_id, to_char(u.requests, 'FM999,999,999,990'),
                round(u.cost / o.total * 100), to_char(u.cpr, 'FM999,999,990.0000'),
                to_char(o.typical, 'FM999,999,990.0000')),
         u.cost * w.monthly, u.requests * o.typical * w.monthly,
         'the user''s cost above the median user''s cost per request, per month', 0.5, 'medium', 'medium',
         jsonb_build_array('Check the user''s plan covers this usage; add a per-user quota or price tier.',
                           'Look for automated or abusive use (request ids in the evidence).'),
         jsonb_build_object('requests', u.requests::bigint, 'cost_per_request', u.cpr,
                            'median_cost_per_request', o.typical, 'share_of_spend', round(u.cost / o.total, 4),
                            'series', u.series, 'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('end_user_id', u.end_user_id),
                            'action', jsonb_build_object('type', 'rate_limit', 'max_cost_per_day',
                                                         round(o.typical * u.requests / w.days, 4)))
  from users u
  join orgs o on o.org_id = u.org_id
  join w on w.org_id = u.org_id
  where o.total > 0 and o.typical > 0
    and u.cpr >= private.detector_param('business_outcome_attribution', 'min_cost_ratio') * o.typical
    and u.cost >= private.detector_param('business_outcome_attribution', 'min_share_of_spend') * o.total
    and (u.cost - u.requests * o.typical) * w.monthly
        >= private.detector_param('business_outcome_attribution', 'min_monthly_savings')
$$;
comment on function private.detect_business_outcome_attribution(uuid[], timestamptz) is
  'End users costing min_cost_ratio times the median user per call and carrying min_share_of_spend of the '
  'organization''s spend: their cost above the median cost per call, per month.';
revoke all on function private.detect_business_outcome_attribution(uuid[], timestamptz) from public;
grant execute on function private.detect_business_outcome_attribution(uuid[], timestamptz) to service_role;

