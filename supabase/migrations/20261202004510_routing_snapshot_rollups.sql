-- The routing snapshot finds the models an organization used in the last 30 days in the daily rollups
-- rather than in usage_records: planning a query over the usage table's day partitions (one per day of
-- the 400-day retention) took 0.5 to 2 s on every call of the SQL function, the rollups take
-- milliseconds. Calls newer than the last rollup refresh (a minute) are not seen until it runs.
create or replace function private.routing_snapshot(org uuid) returns jsonb
language sql stable set search_path = '' set jit = off as $$
  -- materialized: inlined into one statement, the planner re-ran the registry per usage row (100 s)
  with rules as materialized (
    select r.id, r.name, r.priority, r.conditions, r.action, r.traffic_share, r.recommendation_id
      from public.routing_rules r
     where r.org_id = routing_snapshot.org and r.enabled
  ),
  used as materialized (
    select distinct u.provider, u.model from private.usage_rollup_daily u
     where u.org_id = routing_snapshot.org and u.bucket >= now() - interval '30 days'
       and u.requests > 0
    union
    select r.action ->> 'provider', r.action ->> 'model' from rules r where r.action ? 'model'
  ),
  models as materialized (
    select g.* from private.model_registry_cache g
     where (g.family is not null and g.kind = 'text')
        or exists (select 1 from used u where u.model = g.model and (u.provider is null or u.provider = g.provider))
  ),
  quality as materialized (
    select q.provider, q.model, jsonb_object_agg(q.category, q.score) as scores,
           jsonb_object_agg(q.category, q.feedback_count) as samples
      from private.model_quality(routing_snapshot.org) q
     group by q.provider, q.model
  ),
  health as materialized (
    select h.provider, h.model, h.p50_ms, h.p95_ms, h.error_share, h.rate_limited_share, h.requests
      from private.provider_health h
     where h.window_name = '1h'
       and (h.organizations >= (select s.min_organizations from private.provider_health_settings s)
            or routing_snapshot.org = any (h.org_ids))
  )
  select jsonb_build_object(
    'generated_at', now(),
    'rules', coalesce((select jsonb_agg(to_jsonb(r) order by r.priority, r.id) from rules r), '[]'::jsonb),
    'models', coalesce((
      select jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'provider', m.provider, 'model', m.model, 'kind', m.kind, 'family', m.family, 'tier', m.tier,
               'supports_tools', m.supports_tools, 'supports_vision', m.supports_vision,
               'supports_json_mode', m.supports_json_mode, 'context_window', m.context_window,
               'max_output_tokens', m.max_output_tokens, 'deprecated', m.deprecated, 'successor', m.successor,
               'input_mtok', m.input_mtok, 'output_mtok', m.output_mtok, 'cache_read_mtok', m.cache_read_mtok,
               'quality', coalesce(m.quality_priors, '{}'::jsonb) || coalesce(q.scores, '{}'::jsonb),
               'quality_samples', q.samples,
               'p50_ms', coalesce(hm.p50_ms, hp.p50_ms), 'p95_ms', coalesce(hm.p95_ms, hp.p95_ms),
               'error_share', coalesce(hm.error_share, hp.error_share),
               'rate_limited_share', coalesce(hm.rate_limited_share, hp.rate_limited_share)))
             order by m.provider, m.model)
        from models m
        left join quality q on q.provider = m.provider and q.model = m.model
        left join health hm on hm.provider = m.provider and hm.model = m.model
        left join health hp on hp.provider = m.provider and hp.model = '*'), '[]'::jsonb))
$$;
comment on function private.routing_snapshot(uuid) is
  'What routing decides from, for one organization: enabled rules by priority and the registry rows it may route '
  'between (known text models, models it used in 30 days, rule targets) with quality blended with its feedback '
  'and the last hour''s provider health.';
