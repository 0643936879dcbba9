-- The evidence a recommendation's explanation may cite: what the recommendation already carries (costs,
-- savings and how they were estimated, confidence) and the scalar facts its detector recorded (requests,
-- cost per request, rates, models). Series and sample request ids are left out: they are for charts, and
-- every number handed to the writer is one more number its prose may cite. Run as the caller (RLS).

create function public.recommendation_evidence(rec uuid) returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object(
    'subject', 'recommendation',
    'recommendation', jsonb_strip_nulls(jsonb_build_object(
      'category', r.category, 'title', r.title, 'scope_type', r.scope_type, 'scope_value', r.scope_value,
      'status', r.status, 'priority', r.priority, 'risk', r.risk, 'effort', r.effort,
      'current_monthly_cost_usd', trim_scale(round(r.current_monthly_cost, 4)),
      'projected_monthly_cost_usd', trim_scale(round(r.projected_monthly_cost, 4)),
      'estimated_monthly_savings_usd', trim_scale(round(r.estimated_monthly_savings, 4)),
      'estimated_yearly_savings_usd', trim_scale(round(12 * r.estimated_monthly_savings, 4)),
      'savings_pct', trim_scale(round(100 * r.estimated_monthly_savings / nullif(r.current_monthly_cost, 0), 1)),
      'savings_method', r.savings_method,
      'confidence', trim_scale(r.confidence),
      'realised_monthly_savings_usd', trim_scale(round(r.realised_monthly_savings, 4)),
      'last_seen', private.evidence_time(r.last_seen_at))),
    'facts', (
      select coalesce(jsonb_object_agg(e.key, case when jsonb_typeof(e.value) = 'number'
                                                   then to_jsonb(trim_scale(round((e.value #>> '{}')::numeric, 6)))
                                                   else e.value end), '{}'::jsonb)
      from jsonb_each(r.evidence) e
      where e.key not in ('series', 'sample_request_ids', 'scope')
        and (jsonb_typeof(e.value) in ('number', 'string', 'boolean')
             or (jsonb_typeof(e.value) = 'array' and jsonb_array_length(e.value) <= 24
                 and not jsonb_path_exists(e.value, '$[*] ? (@.type() == "object" || @.type() == "array")')))),
    'currency', 'USD', 'timezone', 'UTC')
  from public.recommendations r
  where r.id = rec
$$;
comment on function public.recommendation_evidence(uuid) is
  'The figures a recommendation explanation may cite: costs, savings, method, confidence and the detector''s '
  'scalar facts; null if unreadable.';
revoke all on function public.recommendation_evidence(uuid) from public;
grant execute on function public.recommendation_evidence(uuid) to authenticated, service_role;
