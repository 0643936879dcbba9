-- When a recommendation deserves a multi-agent review (seed 000 §7.4), and what the agents are given.
-- Any one trigger suffices: estimated savings over a threshold, an enterprise organization, conflicting
-- signals, a scope tagged production, a detector confidence under a threshold. The thresholds are
-- arguments, so the worker passes its settings (TOKENTRA_CONSENSUS_*).

-- ---------------------------------------------------------------- conflicting signals
-- Signals that contradict the steady state a recommendation's monthly figures assume:
--   trend: over the last 7 complete days against the 7 before, the scope's cost and its request count
--          moved in opposite directions, each by at least `change` (cost up while requests fall: the
--          cost per request is shifting under the recommendation);
--   rival: another open recommendation for the same scope and the same source model proposes a
--          different target model (two detectors disagree on the scope);
--   anomaly: an open cost anomaly on the scope (its recent spend is not its usual spend).
create function private.consensus_signals(r public.recommendations, change numeric, at timestamptz)
returns jsonb
language sql stable set search_path = '' as $$
  with days as (
    select date_trunc('day', at) as d
  ), trend as (
    select sum(u.cost_usd) filter (where u.bucket >= days.d - interval '7 days') as cost_now,
           sum(u.cost_usd) filter (where u.bucket < days.d - interval '7 days') as cost_before,
           sum(u.requests) filter (where u.bucket >= days.d - interval '7 days') as requests_now,
           sum(u.requests) filter (where u.bucket < days.d - interval '7 days') as requests_before
    from analytics.usage_daily u, days
    where u.org_id = r.org_id and u.bucket >= days.d - interval '14 days' and u.bucket < days.d
      and r.scope_type in ('feature', 'team', 'project', 'model', 'api_key')
      and case r.scope_type when 'feature' then coalesce(u.feature, '(none)') when 'team' then u.team
                            when 'project' then u.project when 'model' then u.model
                            when 'api_key' then u.api_key_id::text end = r.scope_value
  ), changes as (
    select case when cost_before > 0 then round(cost_now / cost_before - 1, 3) end as cost_change,
           case when requests_before > 0 then round(requests_now::numeric / requests_before - 1, 3) end
             as requests_change
    from trend
  ), rivals as (
    select coalesce(jsonb_agg(jsonb_build_object('category', o.category,
                                                 'target_model', o.suggested_rule -> 'action' ->> 'model')
                              order by o.category), '[]') as found
    from public.recommendations o
    where o.org_id = r.org_id and o.id <> r.id and o.status in ('open', 'under_review')
      and o.scope_type = r.scope_type and o.scope_value = r.scope_value
      and o.evidence ->> 'model' = r.evidence ->> 'model'
      and o.suggested_rule -> 'action' ->> 'model' <> r.suggested_rule -> 'action' ->> 'model'
  ), anomalies as (
    select coalesce(jsonb_agg(jsonb_build_object('severity', a.severity, 'since', a.window_start,
                                                 'expected', round(a.expected_value, 4),
                                                 'actual', round(a.actual_value, 4))
                              order by a.window_start), '[]') as found
    from public.anomalies a
    where a.org_id = r.org_id and a.status = 'open' and a.metric = 'cost'
      and a.dimension = case r.scope_type when 'api_key' then 'api_key_id' else r.scope_type end
      and a.dimension_value = r.scope_value
  )
  select jsonb_build_object(
    'conflicting', coalesce((c.cost_change >= change and c.requests_change <= -change)
                            or (c.cost_change <= -change and c.requests_change >= change), false)
                   or jsonb_array_length(rivals.found) > 0 or jsonb_array_length(anomalies.found) > 0,
    'cost_change_7d', c.cost_change,
    'requests_change_7d', c.requests_change,
    'rival_recommendations', rivals.found,
    'open_cost_anomalies', anomalies.found)
  from changes c, rivals, anomalies
$$;
comment on function private.consensus_signals(public.recommendations, numeric, timestamptz) is
  'The signals around a recommendation''s scope (7-day cost and request trends, rival recommendations, open cost '
  'anomalies) and whether they conflict.';
revoke all on function private.consensus_signals(public.recommendations, numeric, timestamptz) from public;

-- ---------------------------------------------------------------- production scope
-- A scope is tagged production when the recommendation's evidence carries the tag, when it is a team or
-- project tagged `production`, or when its traffic of the last 30 days ran through such a team or project.
create function private.consensus_scope_is_production(r public.recommendations, at timestamptz) returns boolean
language sql stable set search_path = '' as $$
  with tagged as (
    select 'team' as kind, t.name from public.teams t where t.org_id = r.org_id and 'production' = any (t.tags)
    union all
    select 'project', p.name from public.projects p where p.org_id = r.org_id and 'production' = any (p.tags)
  )
  select coalesce(r.evidence -> 'tags' ? 'production', false)
      or exists (select 1 from tagged g where g.kind = r.scope_type and g.name = r.scope_value)
      or (r.scope_type in ('feature', 'model', 'api_key') and exists (
            select 1 from analytics.usage_daily u
            join tagged g on (g.kind = 'team' and u.team = g.name) or (g.kind = 'project' and u.project = g.name)
            where u.org_id = r.org_id and u.bucket >= at - interval '30 days'
              and case r.scope_type when 'feature' then coalesce(u.feature, '(none)') when 'model' then u.model
                                    when 'api_key' then u.api_key_id::text end = r.scope_value))
$$;
comment on function private.consensus_scope_is_production(public.recommendations, timestamptz) is
  'Whether a recommendation''s scope is tagged production (evidence tags, team/project tags, or its traffic''s).';
revoke all on function private.consensus_scope_is_production(public.recommendations, timestamptz) from public;

-- ---------------------------------------------------------------- candidates
-- Open (or held) recommendations with no standing review, worth at least `floor_savings` a month (a review
-- costs cents; below the floor it costs more than it can save), not already being reviewed and not failed
-- or stopped within `retry_after`, with the triggers that fire. Largest savings first.
create function private.consensus_candidates(min_savings numeric, min_confidence numeric, floor_savings numeric,
                                             signal_change numeric, retry_after interval, max_rows integer,
                                             org uuid default null, at timestamptz default now())
returns table (recommendation_id uuid, org_id uuid, triggers text[], signals jsonb)
language sql stable set search_path = '' as $$
  with eligible as materialized (
    select r from public.recommendations r
    where r.status in ('open', 'under_review') and r.consensus_run_id is null
      and r.estimated_monthly_savings >= floor_savings
      and (org is null or r.org_id = org)
      and not exists (
        select 1 from public.consensus_runs x
        where x.recommendation_id = r.id
          and (x.status = 'running' or (x.status in ('failed', 'stopped') and x.started_at > at - retry_after)))
  ), judged as (
    select (e.r).id, (e.r).org_id, (e.r).estimated_monthly_savings as savings, s.signals,
           array_remove(array[
             case when (e.r).estimated_monthly_savings > min_savings then 'high_savings' end,
             case when o.plan = 'enterprise' then 'enterprise_plan' end,
             case when (s.signals ->> 'conflicting')::boolean then 'conflicting_signals' end,
             case when private.consensus_scope_is_production(e.r, at) then 'production_scope' end,
             case when (e.r).confidence < min_confidence then 'low_confidence' end], null) as triggers
    from eligible e
    join public.organizations o on o.id = (e.r).org_id
    cross join lateral (select private.consensus_signals(e.r, signal_change, at) as signals) s
  )
  select j.id, j.org_id, j.triggers, j.signals from judged j
  where cardinality(j.triggers) > 0
  order by j.savings desc nulls last, j.id
  limit greatest(max_rows, 0)
$$;
comment on function private.consensus_candidates(numeric, numeric, numeric, numeric, interval, integer, uuid,
                                                 timestamptz) is
  'Recommendations the consensus job should review now, with the seed 000 §7.4 triggers that fire and the signals.';
revoke all on function private.consensus_candidates(numeric, numeric, numeric, numeric, interval, integer, uuid,
                                                    timestamptz) from public;

-- ---------------------------------------------------------------- evidence
-- What the agents see: figures and evidence straight from SQL. Request ids and hashes are left out: they
-- say nothing to a reviewer, and customer prompts are never part of it.
create function private.consensus_evidence(rec uuid, signals jsonb) returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'title', r.title,
    'category', r.category,
    'description', r.description,
    'scope', jsonb_build_object('type', r.scope_type, 'value', r.scope_value),
    'organization_plan', o.plan,
    'current_monthly_cost_usd', r.current_monthly_cost,
    'projected_monthly_cost_usd', r.projected_monthly_cost,
    'estimated_monthly_savings_usd', r.estimated_monthly_savings,
    'savings_method', r.savings_method,
    'detector_confidence', r.confidence,
    'risk', r.risk,
    'effort', r.effort,
    'implementation_steps', r.implementation_steps,
    'suggested_rule', r.suggested_rule,
    'evidence', (select coalesce(jsonb_object_agg(k, v), '{}') from jsonb_each(r.evidence) e(k, v)
                 where k <> 'sample_request_ids' and k not like '%hash%' and k not like '%prompt_text%'),
    'signals', signals))
  from public.recommendations r join public.organizations o on o.id = r.org_id
  where r.id = rec
$$;
comment on function private.consensus_evidence(uuid, jsonb) is
  'The recommendation as the consensus agents see it: title, scope, costs, savings method, evidence, signals.';
revoke all on function private.consensus_evidence(uuid, jsonb) from public;
