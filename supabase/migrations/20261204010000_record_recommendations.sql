-- The recommendations job writes a chunk of organizations' findings in three statements instead of one
-- upsert per finding and three more statements per organization. Same lifecycle as before: a finding
-- updates the recommendation with its fingerprint (reopening an expired one, never touching a dismissed
-- or applied one), an open recommendation no finding repeats expires, and an organization with applied
-- recommendations gets their realised savings measured.
create function private.record_recommendations(p_orgs uuid[], p_found jsonb, p_window_days jsonb)
returns table (org_id uuid, found integer, written integer, expired integer)
language plpgsql volatile set search_path = '' set jit = off as $$
#variable_conflict use_column
declare
  ids uuid[];
  id_orgs uuid[];
begin
  with found as (
    -- A fingerprint found twice keeps its last finding, as when each finding was written on its own.
    select distinct on (c.org_id, c.fingerprint) c.*
      from (select f.*, f.category || ':' || f.scope_type || '=' || f.scope_value || ':' || f.key as fingerprint,
                   greatest(f.current_monthly_cost - f.projected_monthly_cost, 0) as savings, x.n
              from jsonb_array_elements(p_found) with ordinality x (candidate, n)
             cross join lateral jsonb_populate_record(null::private.recommendation_candidate, x.candidate) f
             where f.org_id = any (p_orgs)) c
     order by c.org_id, c.fingerprint, c.n desc
  ), written as (
    insert into public.recommendations as r (org_id, category, scope_type, scope_value, fingerprint, title,
                                             description, current_monthly_cost, projected_monthly_cost,
                                             estimated_monthly_savings, savings_method, confidence, priority, risk,
                                             effort, implementation_steps, evidence, suggested_rule, last_seen_at)
    select f.org_id, f.category, f.scope_type, f.scope_value, f.fingerprint, f.title, f.description,
           round(f.current_monthly_cost, 4), round(f.projected_monthly_cost, 4), round(f.savings, 4),
           f.savings_method, f.confidence,
           case when f.savings >= 1000 then 'critical' when f.savings >= 200 then 'high'
                when f.savings >= 20 then 'medium' else 'low' end,
           f.risk, f.effort, coalesce(f.implementation_steps, '[]'),
           coalesce(f.evidence, '{}')
             || jsonb_build_object('scope', jsonb_build_object(f.scope_type, f.scope_value),
                                   'window_days', round(coalesce((p_window_days ->> f.org_id::text)::numeric, 1), 2)),
           nullif(f.suggested_rule, '{}'), now()
      from found f
     order by f.n
    on conflict (org_id, fingerprint) do update
      set title = excluded.title, description = excluded.description,
          current_monthly_cost = excluded.current_monthly_cost,
          projected_monthly_cost = excluded.projected_monthly_cost,
          estimated_monthly_savings = excluded.estimated_monthly_savings, savings_method = excluded.savings_method,
          confidence = excluded.confidence, priority = excluded.priority, evidence = excluded.evidence,
          suggested_rule = excluded.suggested_rule, implementation_steps = excluded.implementation_steps,
          last_seen_at = now(), status = case when r.status = 'expired' then 'open' else r.status end
      where r.status in ('open', 'under_review', 'expired')
    returning r.org_id, r.id
  )
  select coalesce(array_agg(w.id), '{}'), coalesce(array_agg(w.org_id), '{}') into ids, id_orgs from written w;

  return query
  with expired as (
    update public.recommendations r set status = 'expired'
     where r.org_id = any (p_orgs) and r.status in ('open', 'under_review') and not (r.id = any (ids))
    returning r.org_id
  ), found as (
    select (c ->> 'org_id')::uuid as org_id, count(*) as n from jsonb_array_elements(p_found) c group by 1
  ), written as (
    select w as org_id, count(*) as n from unnest(id_orgs) w group by 1
  ), lapsed as (
    select e.org_id, count(*) as n from expired e group by 1
  )
  select o.org_id, coalesce(f.n, 0)::integer, coalesce(w.n, 0)::integer, coalesce(l.n, 0)::integer
    from unnest(p_orgs) o (org_id)
    left join found f on f.org_id = o.org_id
    left join written w on w.org_id = o.org_id
    left join lapsed l on l.org_id = o.org_id;

  -- Measuring costs more than the lookup that shows most organizations have nothing applied.
  perform private.measure_realised_savings(o.org_id)
     from unnest(p_orgs) o (org_id)
    where exists (select from public.recommendations a where a.org_id = o.org_id and a.status = 'applied');
end
$$;
comment on function private.record_recommendations(uuid[], jsonb, jsonb) is
  'Write the detectors'' findings for the given organizations: p_found a json array of '
  'private.recommendation_candidate objects, p_window_days {"<org id>": days of history the window covered}. '
  'Upserts by fingerprint (category:scope_type=scope_value:key), expires the organizations'' open '
  'recommendations found no more, measures realised savings where some are applied; returns per organization '
  'the findings, the recommendations written and those expired.';
revoke all on function private.record_recommendations(uuid[], jsonb, jsonb) from public;
grant execute on function private.record_recommendations(uuid[], jsonb, jsonb) to service_role;
