-- The registry as the API and routing read it, and the queries that were too slow to serve calls.
--
-- public.model_registry resolves families and current prices for every priced model on each read
-- (0.3 to 3 s inside a function, where generic plans nest-loop over it). It changes only when prices
-- sync or the families table changes, so a materialized copy, refreshed every ten minutes and by
-- private.refresh_model_registry() after a sync, serves the reads.

create materialized view private.model_registry_cache as select * from public.model_registry;
create unique index model_registry_cache_key on private.model_registry_cache (provider, model);
create index model_registry_cache_family_idx on private.model_registry_cache (family) where family is not null;
comment on materialized view private.model_registry_cache is
  'public.model_registry materialized for serving; refreshed every 10 minutes (tokentra-model-registry).';
revoke all on private.model_registry_cache from public, anon, authenticated;
grant select on private.model_registry_cache to service_role;

create function private.refresh_model_registry() returns bigint
language plpgsql volatile set search_path = '' as $$
begin
  refresh materialized view concurrently private.model_registry_cache;
  return (select count(*) from private.model_registry_cache);
end
$$;
comment on function private.refresh_model_registry() is
  'Refresh the served copy of the model registry (after a price sync or a change of families); returns its rows.';
revoke all on function private.refresh_model_registry() from public;
grant execute on function private.refresh_model_registry() to service_role;

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-model-registry', '*/10 * * * *', 'select private.refresh_model_registry()',
   'Refresh the served copy of the model registry from prices and families.');
select private.schedule_periodic_jobs();

-- Feedback of one organization, looked up call by call: each score finds its claim, then its usage row.
-- PL/pgSQL rather than SQL: planning a join into the usage table's hundreds of day partitions took
-- seconds on every call of the SQL version (20261202004200); PL/pgSQL keeps the plan for the session.
-- An organization without feedback returns at once.
create or replace function private.model_quality(org uuid, since timestamptz default now() - interval '30 days')
returns table (provider text, model text, category text, prior numeric, prior_source text,
               feedback_count bigint, feedback_mean numeric, score numeric)
language plpgsql stable set search_path = '' as $$
begin
  if not exists (select 1 from private.usage_feedback f where f.org_id = model_quality.org) then
    return;
  end if;
  return query
  with feedback as materialized (
    select u.provider, u.model, private.task_category(u.task_type) as category,
           count(*) as n, sum(f.score) as total
      from private.usage_feedback f
      cross join lateral (select r.occurred_at from private.usage_request_ids r
                           where r.org_id = f.org_id and r.request_id = f.request_id
                             and r.occurred_at >= model_quality.since) r
      cross join lateral (select x.provider, x.model, x.task_type from public.usage_records x
                           where x.org_id = f.org_id and x.occurred_at = r.occurred_at
                             and x.request_id = f.request_id limit 1) u
     where f.org_id = model_quality.org
       and private.task_category(u.task_type) is not null
     group by 1, 2, 3
  )
  select fb.provider, fb.model, fb.category, coalesce(q.score, 0.75), coalesce(q.source, 'default'),
         fb.n, round(fb.total / fb.n, 4),
         round((coalesce(q.score, 0.75) * 20 + fb.total) / (20 + fb.n), 4)
    from feedback fb
    left join private.model_quality_priors q
      on q.family = private.model_family(fb.provider, fb.model) and q.category = fb.category;
end
$$;

-- What GET /functions/v1/models answers for an API key's organization: registry rows, filtered, each
-- with quality per category blended with the organization's feedback (and the feedback counts behind
-- it) and the last hour's and day's health of its provider and model.
create function private.models_for(org uuid, provider text default null, family_only boolean default false,
                                   include_deprecated boolean default true, kind text default null)
returns jsonb
language sql stable set search_path = '' set jit = off as $$
  with models as materialized (
    select g.* from private.model_registry_cache g
     where (models_for.provider is null or g.provider = models_for.provider)
       and (not models_for.family_only or g.family is not null)
       and (models_for.include_deprecated or not g.deprecated)
       and (models_for.kind is null or g.kind = models_for.kind)
  ),
  quality as materialized (
    select q.provider, q.model, jsonb_object_agg(q.category, q.score) as scores,
           jsonb_object_agg(q.category, q.feedback_count) as samples
      from private.model_quality(models_for.org) q
     group by q.provider, q.model
  ),
  health as materialized (
    select h.provider, h.model, jsonb_object_agg(h.window_name, jsonb_build_object(
             'requests', h.requests, 'p50_ms', h.p50_ms, 'p95_ms', h.p95_ms, 'error_share', h.error_share,
             'rate_limited_share', h.rate_limited_share, 'timeout_share', h.timeout_share)) as windows
      from private.provider_health h
     where h.organizations >= (select s.min_organizations from private.provider_health_settings s)
        or models_for.org = any (h.org_ids)
     group by h.provider, h.model
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'provider', m.provider, 'model', m.model, 'name', m.name, 'kind', m.kind, 'family', m.family,
           'tier', m.tier, 'tier_source', m.tier_source,
           'capabilities', jsonb_build_object('tools', m.supports_tools, 'vision', m.supports_vision,
                                              'json_mode', m.supports_json_mode,
                                              'embeddings', m.supports_embeddings, 'batch', m.supports_batch),
           'context_window', m.context_window, 'max_output_tokens', m.max_output_tokens,
           'deprecated', m.deprecated, 'retires_on', m.retires_on, 'successor', m.successor,
           'price', jsonb_build_object('input_mtok', m.input_mtok, 'output_mtok', m.output_mtok,
                                       'cache_read_mtok', m.cache_read_mtok, 'cache_write_mtok', m.cache_write_mtok,
                                       'effective_from', m.price_effective_from),
           'quality', coalesce(m.quality_priors, '{}'::jsonb) || coalesce(q.scores, '{}'::jsonb),
           'quality_prior', m.quality_priors, 'quality_samples', coalesce(q.samples, '{}'::jsonb),
           'health', coalesce(hm.windows, '{}'::jsonb), 'provider_health', coalesce(hp.windows, '{}'::jsonb))
         order by m.provider, m.model), '[]'::jsonb)
    from models m
    left join quality q on q.provider = m.provider and q.model = m.model
    left join health hm on hm.provider = m.provider and hm.model = m.model
    left join health hp on hp.provider = m.provider and hp.model = '*'
$$;
comment on function private.models_for(uuid, text, boolean, boolean, text) is
  'Registry rows for one organization (filters: provider, family_only, include_deprecated, kind) with quality '
  'blended with its feedback, feedback counts, and model and provider health per window.';
revoke all on function private.models_for(uuid, text, boolean, boolean, text) from public;
grant execute on function private.models_for(uuid, text, boolean, boolean, text) to service_role;

-- The routing snapshot reads the served copy of the registry too.
create or replace function private.routing_snapshot(org uuid) returns jsonb
language sql stable set search_path = '' set jit = off as $$
  -- materialized: inlined into one statement, the planner re-ran the registry per usage row (100 s)
  with rules as materialized (
    select r.id, r.name, r.priority, r.conditions, r.action, r.traffic_share, r.recommendation_id
      from public.routing_rules r
     where r.org_id = routing_snapshot.org and r.enabled
  ),
  used as materialized (
    select distinct u.provider, u.model from public.usage_records u
     where u.org_id = routing_snapshot.org and u.occurred_at >= now() - interval '30 days'
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
