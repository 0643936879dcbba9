-- The recommendation engine (worker job `recommendations`): the index its per-pattern aggregates read,
-- what an applied recommendation is measured against, and the lifecycle functions the API calls as the
-- signed-in user (RLS and the column grants of 20261122000900 decide who may apply or dismiss).

-- Repeated prompts (deduplication, caching) are found per organization and prompt hash.
create index usage_records_org_prompt_hash_idx on public.usage_records (org_id, prompt_hash, occurred_at)
  where prompt_hash is not null;

alter table public.recommendations
  add column baseline jsonb,
  add column realised_monthly_savings numeric(14, 4),
  add column last_seen_at timestamptz not null default now();
comment on column public.recommendations.baseline is
  'Set on apply: the scope''s cost per request and monthly cost before the change, to measure savings against.';
comment on column public.recommendations.realised_monthly_savings is
  'Measured by the engine after apply: (baseline cost per request - cost per request since) * requests, per month.';
comment on column public.recommendations.last_seen_at is 'When a detector last found the pattern.';

-- ---------------------------------------------------------------- list
create function public.recommendation_list(org uuid default null, status text default null,
                                           category text default null, scope_type text default null,
                                           min_savings numeric default null, max_rows integer default 100)
returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object('data', coalesce(jsonb_agg(to_jsonb(x) order by x.estimated_monthly_savings desc nulls last,
                                                       x.id), '[]'::jsonb))
  from (
    select r.* from public.recommendations r
    where (org is null or r.org_id = org)
      and (recommendation_list.status is null or r.status = recommendation_list.status)
      and (recommendation_list.category is null or r.category = recommendation_list.category)
      and (recommendation_list.scope_type is null or r.scope_type = recommendation_list.scope_type)
      and (min_savings is null or r.estimated_monthly_savings >= min_savings)
    order by r.estimated_monthly_savings desc nulls last, r.id
    limit least(greatest(max_rows, 1), 1000)
  ) x
$$;
comment on function public.recommendation_list(uuid, text, text, text, numeric, integer) is
  'Recommendations the caller may read, largest estimated monthly savings first, filtered.';
revoke all on function public.recommendation_list(uuid, text, text, text, numeric, integer) from public;
grant execute on function public.recommendation_list(uuid, text, text, text, numeric, integer)
  to authenticated, service_role;

-- ---------------------------------------------------------------- apply
-- Records the baseline (a definer helper: users may not write that column), marks the recommendation
-- applied and creates the routing rule it suggests, on `traffic_share` of the traffic (an A/B test when
-- below 1). Runs as the caller: only members allowed to write recommendations and routing rules succeed.
create function private.record_recommendation_baseline(rec uuid) returns void
language sql volatile security definer set search_path = '' as $$
  update public.recommendations r
     set baseline = jsonb_build_object('monthly_cost', r.current_monthly_cost,
                                       'cost_per_request', r.evidence -> 'cost_per_request',
                                       'requests', r.evidence -> 'requests', 'recorded_at', now())
   where r.id = rec and r.baseline is null
     and r.org_id = any ((select private.org_ids_with('recommendations.write'))::uuid[])
$$;
comment on function private.record_recommendation_baseline(uuid) is
  'Freeze the pre-apply baseline of a recommendation the caller may write.';
revoke all on function private.record_recommendation_baseline(uuid) from public;
grant execute on function private.record_recommendation_baseline(uuid) to authenticated;

create function public.apply_recommendation(rec uuid, traffic_share numeric default 1) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
  r public.recommendations;
  rule public.routing_rules;
begin
  if traffic_share is null or traffic_share <= 0 or traffic_share > 1 then
    raise exception 'traffic_share: must be in (0, 1]' using errcode = '22023';
  end if;
  update public.recommendations x set status = 'applied', applied_at = now()
   where x.id = rec and x.status in ('open', 'under_review')
  returning * into r;
  if r.id is null then
    raise exception 'recommendation: no open recommendation % that you may apply', rec using errcode = 'P0002';
  end if;
  perform private.record_recommendation_baseline(rec);
  if r.suggested_rule is not null then
    insert into public.routing_rules (org_id, name, priority, conditions, action, traffic_share, recommendation_id)
    values (r.org_id, left(r.title, 200), 100, coalesce(r.suggested_rule -> 'conditions', '{}'),
            r.suggested_rule -> 'action', traffic_share, r.id)
    returning * into rule;
  end if;
  return jsonb_build_object('recommendation_id', r.id, 'status', 'applied',
                            'routing_rule', case when rule.id is null then null else to_jsonb(rule) end);
end
$$;
comment on function public.apply_recommendation(uuid, numeric) is
  'Apply an open recommendation: baseline recorded, status applied, its suggested routing rule created '
  '(on traffic_share of the traffic).';
revoke all on function public.apply_recommendation(uuid, numeric) from public;
grant execute on function public.apply_recommendation(uuid, numeric) to authenticated;

-- ---------------------------------------------------------------- dismiss
create function public.dismiss_recommendation(rec uuid, reason text) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
  found uuid;
begin
  if reason is null or btrim(reason) = '' then
    raise exception 'reason: say why the recommendation is dismissed' using errcode = '22023';
  end if;
  update public.recommendations x set status = 'dismissed', dismiss_reason = reason
   where x.id = rec and x.status in ('open', 'under_review', 'expired')
  returning x.id into found;
  if found is null then
    raise exception 'recommendation: no open recommendation % that you may dismiss', rec using errcode = 'P0002';
  end if;
  return jsonb_build_object('recommendation_id', found, 'status', 'dismissed');
end
$$;
comment on function public.dismiss_recommendation(uuid, text) is
  'Dismiss a recommendation with a reason; the engine never reopens that pattern.';
revoke all on function public.dismiss_recommendation(uuid, text) from public;
grant execute on function public.dismiss_recommendation(uuid, text) to authenticated;
