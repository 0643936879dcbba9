-- Realised savings of an applied recommendation, measured in SQL. A recommendation whose routing rule has
-- routed calls since it was applied is measured on those calls: what each cost against what the same
-- tokens would have cost on the model asked for, priced at the call's time (private.routing_savings, the
-- usage rows' routed_from_model, rule and arm). Control-arm calls of an experiment ran on the asked model
-- and save nothing, so they are left out. Any other applied recommendation keeps the scope's cost per
-- request since applying against the baseline frozen when it was applied. Either way the figure is scaled
-- to a month, and the method is named beside it.
alter table public.recommendations add column realised_method text
  constraint realised_method_is_known check (realised_method in ('routed_calls', 'cost_per_request'));
comment on column public.recommendations.realised_method is
  'How realised_monthly_savings was measured: routed_calls (the savings of the calls this recommendation''s '
  'routing rule routed, against the model asked for) or cost_per_request (the scope''s cost per request since '
  'applying, against the baseline frozen at apply time); null until measured.';

create function private.measure_realised_savings(org uuid) returns integer
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  measured integer;
  routed integer;
begin
  update public.recommendations r
     set realised_monthly_savings = round(((r.baseline ->> 'cost_per_request')::numeric * m.requests - m.cost)
                                          * 30 * 86400 / greatest(extract(epoch from now() - r.applied_at), 3600), 4),
         realised_method = 'cost_per_request'
    from (select x.id, coalesce(sum(u.requests), 0) as requests, coalesce(sum(u.cost_usd), 0) as cost
            from public.recommendations x
            left join analytics.usage_hourly u
              on u.org_id = x.org_id and u.bucket >= date_trunc('hour', x.applied_at)
             and coalesce(u.feature, '(none)') = x.scope_value
           where x.org_id = measure_realised_savings.org and x.status = 'applied'
             and x.baseline ? 'cost_per_request'
           group by x.id) m
   where r.id = m.id;
  get diagnostics measured = row_count;

  with saved as (
    select a.id, sum(s.requests) as requests, sum(s.savings_usd) as savings
      from public.recommendations a
     cross join lateral private.routing_savings(measure_realised_savings.org, a.applied_at) s
     where a.org_id = measure_realised_savings.org and a.status = 'applied' and a.applied_at is not null
       and s.recommendation_id = a.id and s.routing_arm is distinct from 'control'
     group by a.id
  )
  update public.recommendations r
     set realised_monthly_savings = round(s.savings * 30 * 86400
                                          / greatest(extract(epoch from now() - r.applied_at), 3600), 4),
         realised_method = 'routed_calls'
    from saved s
   where r.id = s.id and s.requests > 0;
  get diagnostics routed = row_count;
  return measured + routed;
end
$$;
comment on function private.measure_realised_savings(uuid) is
  'Sets realised_monthly_savings and realised_method of an organization''s applied recommendations: from the '
  'calls their routing rule routed where there are any, else from the scope''s cost per request against the '
  'baseline. Answers how many rows it updated.';
revoke all on function private.measure_realised_savings(uuid) from public;
grant execute on function private.measure_realised_savings(uuid) to service_role;
