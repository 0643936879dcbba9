-- Test helpers, installed (not rolled back) before the other files run, in the `tests` schema the
-- API never exposes. Modelled on supabase-test-helpers: impersonate users through request.jwt.claims.
create extension if not exists pgtap with schema extensions;
create schema if not exists tests;
grant usage on schema tests to anon, authenticated;

create or replace function tests.create_user(identifier text) returns uuid
language sql volatile set search_path = '' as $$
  insert into auth.users (email) values (identifier || '@tests.tokentra.local')
  on conflict (email) do update set updated_at = now()
  returning id
$$;
comment on function tests.create_user(text) is 'Create (or find) a test user named by identifier.';

create or replace function tests.uid(identifier text) returns uuid
language sql stable set search_path = '' as $$
  select id from auth.users where email = identifier || '@tests.tokentra.local'
$$;
comment on function tests.uid(text) is 'The id of a test user.';

create or replace function tests.authenticate_as(identifier text) returns void
language plpgsql volatile set search_path = '' as $$
begin
  perform set_config('request.jwt.claims',
    json_build_object('sub', tests.uid(identifier), 'role', 'authenticated')::text, true);
  perform set_config('role', 'authenticated', true);
end
$$;
comment on function tests.authenticate_as(text) is 'Act as a signed-in test user for the rest of the transaction.';

create or replace function tests.become_anon() returns void
language plpgsql volatile set search_path = '' as $$
begin
  perform set_config('request.jwt.claims', json_build_object('role', 'anon')::text, true);
  perform set_config('role', 'anon', true);
end
$$;
comment on function tests.become_anon() is 'Act as an anonymous API caller.';

create or replace function tests.clear_authentication() returns void
language plpgsql volatile set search_path = '' as $$
begin
  perform set_config('role', 'postgres', true);
  perform set_config('request.jwt.claims', '', true);
end
$$;
comment on function tests.clear_authentication() is 'Back to the test runner''s own role.';

-- Tables that belong to an organization (have org_id), excluding partitions of a partitioned parent.
create or replace function tests.tenant_tables() returns setof regclass
language sql stable set search_path = '' as $$
  select c.oid::regclass
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = 'org_id' and not a.attisdropped
  where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
  order by 1::text
$$;
comment on function tests.tenant_tables() is 'Every public table that holds organization rows.';

-- One row in every tenant table for an organization, as the service would write them.
create or replace function tests.seed_org(org uuid, tag text) returns void
language plpgsql volatile set search_path = '' as $$
declare
  team uuid;
  budget uuid;
  rule uuid;
  rec uuid;
  consensus uuid;
begin
  insert into public.teams (org_id, name) values (org, 'team-' || tag) returning id into team;
  insert into public.projects (org_id, team_id, name) values (org, team, 'project-' || tag);
  insert into public.billing_profiles (org_id) values (org) on conflict do nothing;
  perform private.new_api_key(org, null, 'key-' || tag);
  insert into public.provider_connections (org_id, provider, key_hint, ciphertext, wrapped_key)
  values (org, 'openai', 'abcd', '\x01', '\x02');
  insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens)
  values (org, now(), 'req-' || tag, 'openai', 'gpt-4o', 10, 5);
  insert into public.budgets (org_id, name, amount, period) values (org, 'budget-' || tag, 100, 'monthly')
  returning id into budget;
  insert into public.alert_rules (org_id, name, type) values (org, 'rule-' || tag, 'budget_threshold')
  returning id into rule;
  insert into public.alert_events (org_id, rule_id, budget_id, dedup_key, title)
  values (org, rule, budget, 'dedup-' || tag, 'event-' || tag);
  insert into public.recommendations (org_id, category, fingerprint, title)
  values (org, 'task_aware_routing', 'fp-' || tag, 'rec-' || tag) returning id into rec;
  insert into public.routing_rules (org_id, name, action, recommendation_id)
  values (org, 'route-' || tag, '{"model": "gpt-4o-mini"}', rec);
  insert into public.consensus_runs (org_id, recommendation_id, triggers, evidence, rereview_change)
  values (org, rec, '{high_savings}', '{}', 0.2) returning id into consensus;
  insert into public.consensus_rounds (run_id, org_id, round, score, verdict_agreement, savings_agreement,
                                       key_point_overlap)
  values (consensus, org, 1, 0.9, 1, 0.8, 0.5);
  insert into public.consensus_positions (run_id, org_id, round, role, provider, model, request_id, verdict,
                                          adjusted_monthly_savings, confidence)
  values (consensus, org, 1, 'analyst', 'openai', 'gpt-4.1-mini', 'consensus-' || tag, 'accept', 10, 0.8);
  insert into public.consensus_calls (run_id, org_id, seq, round, task, provider, model, request_id, input_tokens,
                                      output_tokens, cost_usd, latency_ms, ok)
  values (consensus, org, 1, 1, 'consensus.analyst', 'openai', 'gpt-4.1-mini', 'consensus-' || tag, 100, 10, 0.001,
          50, true);
  insert into public.anomalies (org_id, metric, severity, window_start)
  values (org, 'cost', 'high', now() - interval '1 hour');
  insert into public.spend_forecasts (org_id, budget_id, period_start, period_end, spent_to_date, forecast, lower_80,
                                     upper_80, lower_95, upper_95, method)
  values (org, budget, date_trunc('month', now()), date_trunc('month', now()) + interval '1 month', 1, 2, 1.5, 2.5,
          1.2, 3, 'test');
  insert into public.semantic_cache (org_id, model, embedding_model, embedding, prompt_hash, response, scope_key)
  values (org, 'gpt-4o', 'text-embedding-3-small', array_fill(0.1, array[1536])::extensions.vector,
          'hash-' || tag, '{}', private.cache_scope_key(org, 'gpt-4o', '', '', ''));
  insert into public.semantic_cache_settings (org_id, enabled, store_responses) values (org, true, false);
  insert into public.semantic_cache_stats (org_id, hour, model, lookups, misses)
  values (org, date_trunc('hour', now(), 'UTC'), 'gpt-4o', 1, 1);
  insert into public.explanations (org_id, recommendation_id, headline, body, source, fallback_reason, evidence)
  values (org, rec, 'explanation-' || tag, 'body', 'template', 'llm_off', '{}');
  insert into public.reports (org_id, period_start, period_end, headline, narrative, method, grounded,
                              fallback_reason, evidence)
  values (org, '2026-11-23T00:00Z', '2026-11-30T00:00Z', 'report-' || tag, 'narrative', 'template', true,
          'llm_off', '{}');
end
$$;
comment on function tests.seed_org(uuid, text) is 'Insert one row into every tenant table for org.';

-- pg_cron exists in one database of a server only (cron.database_name); a test database elsewhere has
-- none, and there the worker runs the periodic jobs. Tests ask through these instead of naming cron.job.
create or replace function tests.has_cron() returns boolean
language sql stable set search_path = '' as $$
  select pg_catalog.to_regclass('cron.job') is not null
$$;
comment on function tests.has_cron() is 'Whether pg_cron schedules jobs in this database.';

create or replace function tests.cron_schedule(job text) returns text
language plpgsql stable set search_path = '' as $$
declare
  found text;
begin
  if not tests.has_cron() then
    return null;
  end if;
  execute 'select schedule from cron.job where jobname = $1' into found using job;
  return found;
end
$$;
comment on function tests.cron_schedule(text) is 'The pg_cron schedule of a job, or null (also without pg_cron).';

-- The helpers file itself is a test file for pg_prove: one trivial assertion.
select extensions.plan(1);
-- the helpers exist
select extensions.has_function('tests', 'seed_org', array['uuid', 'text']);
select * from extensions.finish();
