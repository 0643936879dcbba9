-- Routing decisions: what the SDK, the /route function and the gateway need to decide (one snapshot of
-- an organization's rules and the registry), where each decision is recorded (the usage row), and the
-- savings those rows prove.
--
-- A routed call carries its decision in the event's client signals, metadata.tokentra:
-- routing_rule_id, routing_arm ('treatment' | 'control' of an experiment, 'rule' when the rule runs on
-- all traffic, 'strategy' when the registry chose) and routed_from_provider (the asked model's
-- provider; routed_from_model is a column of its own since the first schema). The two columns below
-- are derived from that metadata, so the ingest path needs no change to fill them: they are stored
-- generated columns (adding them rewrites the usage table once).

-- ---------------------------------------------------------------- recorded on the usage row
-- A malformed id never reaches here: ingest validates routing_rule_id as a UUID before it is stored.
alter table public.usage_records
  add column routing_rule_id uuid generated always as ((metadata #>> '{tokentra,routing_rule_id}')::uuid) stored,
  add column routing_arm text generated always as (metadata #>> '{tokentra,routing_arm}') stored;
comment on column public.usage_records.routing_rule_id is
  'The routing rule that decided this call (from metadata.tokentra.routing_rule_id), null when none did.';
comment on column public.usage_records.routing_arm is
  'treatment or control of an experimenting rule, rule (rule on all traffic) or strategy (chosen from the '
  'registry); null when routing was off.';
create index usage_records_org_routing_rule_idx on public.usage_records (org_id, routing_rule_id, occurred_at)
  where routing_rule_id is not null;

-- ---------------------------------------------------------------- the snapshot routing decides from
-- An organization's enabled rules by priority, and the registry rows it can route between: every text
-- model of a known family, plus whatever it called in the last 30 days or a rule targets, each with
-- its quality per category (the prior blended with the organization's feedback) and provider health.
create function private.routing_snapshot(org uuid) returns jsonb
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
    select g.* from public.model_registry g
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
revoke all on function private.routing_snapshot(uuid) from public;
grant execute on function private.routing_snapshot(uuid) to service_role;

-- ---------------------------------------------------------------- realised savings
-- Per rule and arm since a time: calls, what they cost, what the same tokens would have cost on the
-- model asked for (priced at each call's time), the difference, and the feedback scores of the arm.
-- A control arm's calls ran on the asked model, so its counterfactual is its cost: the experiment's
-- effect is the treatment's savings against the quality difference between arms.
create function private.routing_savings(org uuid, since timestamptz default now() - interval '30 days')
returns table (routing_rule_id uuid, recommendation_id uuid, routing_arm text, requests bigint, cost_usd numeric,
               counterfactual_cost_usd numeric, savings_usd numeric, feedback_count bigint, feedback_mean numeric)
language sql stable set search_path = '' set jit = off as $$
  with calls as (
    select u.routing_rule_id, u.routing_arm, u.request_id, coalesce(u.cost_usd, 0) as cost,
           case when u.routed_from_model is null or u.routed_from_model = u.model then coalesce(u.cost_usd, 0)
                else coalesce((select c.cost_usd
                                 from private.usage_cost(coalesce(u.metadata #>> '{tokentra,routed_from_provider}',
                                                                  u.provider),
                                                         u.routed_from_model, u.occurred_at, u.input_tokens,
                                                         u.output_tokens, u.cached_tokens, u.cache_write_tokens,
                                                         u.reasoning_tokens) c), coalesce(u.cost_usd, 0)) end
             as counterfactual
      from public.usage_records u
     where u.org_id = routing_savings.org and u.occurred_at >= routing_savings.since
       and u.routing_arm is not null
  )
  select c.routing_rule_id, r.recommendation_id, c.routing_arm, count(*), round(sum(c.cost), 8),
         round(sum(c.counterfactual), 8), round(sum(c.counterfactual - c.cost), 8),
         count(f.score), round(avg(f.score), 4)
    from calls c
    left join public.routing_rules r on r.id = c.routing_rule_id
    left join private.usage_feedback f on f.org_id = routing_savings.org and f.request_id = c.request_id
   group by c.routing_rule_id, r.recommendation_id, c.routing_arm
$$;
comment on function private.routing_savings(uuid, timestamptz) is
  'Realised routing savings per rule and arm from usage rows: cost, counterfactual cost on the asked model, '
  'savings, and the arm''s feedback count and mean.';
revoke all on function private.routing_savings(uuid, timestamptz) from public;
grant execute on function private.routing_savings(uuid, timestamptz) to service_role;
