-- task_aware_routing, the same rule and figures: the five sample calls are read for the findings only,
-- after the filter, instead of being collected for every group of the chunk (an ordered array_agg made
-- the grouping sort every successful call of the chunk).
create or replace function private.detect_task_aware_routing(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('task_aware_routing', 'min_monthly_savings') as min_savings,
           private.detector_param('task_aware_routing', 'max_cost_share') as max_share
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), tasks as (
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.task_type,
           b.model as target, count(*) as requests, sum(r.input_tokens)::bigint as input_tokens,
           sum(r.output_tokens)::bigint as output_tokens, sum(r.cached_tokens)::bigint as cached_tokens,
           coalesce(sum(r.cost_usd), 0) as cost
      from public.usage_records r
      join private.budget_tier_tasks t on t.task_type = r.task_type
      join private.provider_budget_models b on b.provider_id = r.provider
     where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.status = 'success'
       and r.canonical_model <> b.model
     group by 1, 2, 3, 4, 5, 6
  )
  select t.org_id, 'task_aware_routing', 'feature', t.feature, t.task_type || ':' || t.model,
         format('Route %s calls of feature %s from %s to %s', t.task_type, t.feature, t.model, t.target),
         format('%s %s calls of feature `%s` in %s days ran on %s; %s is a budget-tier task that %s handles, '
                'at %s of the cost.', private.fmt_count(t.requests), t.task_type, t.feature, round(w.days), t.model,
                t.task_type, t.target, private.fmt_share(m.projected / m.current)),
         m.current, m.projected,
         'the same input, cached and output tokens repriced at the target model''s listed price (pricing table)',
         0.8, 'medium', 'low',
         jsonb_build_array(
           format('Route feature %s task %s to %s (apply creates the rule).', t.feature, t.task_type, t.target),
           'Start on a traffic share and compare quality scores before going to 100%.'),
         jsonb_build_object('requests', t.requests, 'cost_per_request', t.cost / greatest(t.requests, 1),
                            'task_type', t.task_type, 'model', t.model, 'provider', t.provider,
                            'target_model', t.target, 'input_tokens', t.input_tokens,
                            'output_tokens', t.output_tokens, 'sample_request_ids', to_jsonb(coalesce(x.samples, '{}'))),
         jsonb_build_object('conditions', jsonb_build_object('feature', t.feature, 'task_type', t.task_type,
                                                             'model', t.model),
                            'action', jsonb_build_object('type', 'route_to_model', 'provider', t.provider,
                                                         'model', t.target))
    from tasks t
    join w on w.org_id = t.org_id
   cross join p
   cross join lateral (
     select t.cost * w.monthly as current, c.cost_usd * w.monthly as projected
       from private.usage_cost(t.provider, t.target, p_now, t.input_tokens, t.output_tokens, t.cached_tokens, 0, 0) c
   ) m
   -- the five most recent calls, read for the findings only
    left join lateral (
      select array_agg(l.request_id order by l.occurred_at desc) as samples
        from (select r.request_id, r.occurred_at from public.usage_records r
               where r.org_id = t.org_id and r.occurred_at >= w.since and r.status = 'success'
                 and r.task_type = t.task_type and coalesce(r.feature, '(none)') = t.feature
                 and r.provider = t.provider and r.canonical_model = t.model
               order by r.occurred_at desc limit 5) l
    ) x on true
   where m.current - m.projected >= p.min_savings and m.projected <= p.max_share * m.current
$$;
