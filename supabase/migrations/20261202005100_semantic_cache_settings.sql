-- Who uses the semantic cache, and for how long answers stay fresh.
--
-- Off by default. Turning it on (`enabled`) lets TokenTRA keep prompt embeddings and hashes; only
-- `store_responses` lets it keep the answers themselves. On without stored responses is a shadow mode:
-- lookups say what would have hit, and the stats show what the cache would save.

create table public.semantic_cache_settings (
  org_id uuid primary key references public.organizations (id) on delete cascade,
  enabled boolean not null default false,
  store_responses boolean not null default false,
  -- null: the embedder's calibrated threshold.
  similarity_threshold double precision,
  default_ttl_seconds integer not null default 3600,
  -- {"task_type": seconds}; 0 never caches that task type.
  ttl_overrides jsonb not null default '{}',
  updated_at timestamptz not null default now(),
  constraint similarity_threshold_is_a_similarity check (similarity_threshold is null
                                                          or similarity_threshold between 0.5 and 1),
  constraint default_ttl_is_at_most_30_days check (default_ttl_seconds between 0 and 2592000),
  constraint ttl_overrides_is_an_object check (jsonb_typeof(ttl_overrides) = 'object')
);
comment on table public.semantic_cache_settings is
  'Per organization: cache on/off, whether answers are stored, threshold and TTLs.';
select private.create_tenant_policies('public.semantic_cache_settings', 'cache');
grant select, insert, delete on public.semantic_cache_settings to authenticated;
grant update (enabled, store_responses, similarity_threshold, default_ttl_seconds, ttl_overrides)
  on public.semantic_cache_settings to authenticated;

-- Each TTL override names a task type and a whole number of seconds up to 30 days.
create function private.check_cache_ttl_overrides() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  item record;
begin
  for item in select key, value from jsonb_each(new.ttl_overrides) loop
    if jsonb_typeof(item.value) <> 'number' or item.value::text !~ '^\d+$'
       or item.value::text::bigint > 2592000 then
      raise exception 'ttl_overrides.%: must be a whole number of seconds from 0 to 2592000', item.key
        using errcode = '22023';
    end if;
  end loop;
  new.updated_at := now();
  return new;
end
$$;
comment on function private.check_cache_ttl_overrides() is
  'Trigger: refuse TTL overrides that are not whole seconds within 30 days; touch updated_at.';
create trigger check_cache_ttl_overrides before insert or update on public.semantic_cache_settings
  for each row execute function private.check_cache_ttl_overrides();

-- Default freshness per task type: chat greetings go stale fast, documentation slowly; creative work
-- and math are never answered from a cache (people ask again to get another answer, or a checked one).
create table private.semantic_cache_ttl (
  task_type text primary key,
  ttl_seconds integer not null,
  constraint ttl_is_at_most_30_days check (ttl_seconds between 0 and 2592000)
);
alter table private.semantic_cache_ttl enable row level security;
comment on table private.semantic_cache_ttl is 'Default cache TTL per task type (0: never cached).';
insert into private.semantic_cache_ttl (task_type, ttl_seconds) values
  ('greeting', 60), ('chitchat', 60), ('information_lookup', 300), ('faq', 3600),
  ('customer_support', 3600), ('clarification', 600), ('summarization', 3600), ('translation', 7200),
  ('sentiment', 3600), ('classification', 3600), ('entity_extraction', 86400), ('data_extraction', 86400),
  ('code_explanation', 86400), ('documentation', 86400), ('formatting', 3600), ('proofreading', 3600),
  ('brainstorming', 0), ('ideation', 0), ('story_generation', 0), ('poetry', 0), ('copywriting', 0),
  ('marketing_copy', 0), ('dialogue_writing', 0), ('creative_editing', 0), ('roleplay', 0), ('math', 0);

-- The TTL an entry of this task type gets in this organization, in seconds (0: do not cache).
create function private.cache_ttl_seconds(p_org_id uuid, p_task_type text) returns integer
language sql stable security definer set search_path = '' as $$
  select coalesce(
    (select (s.ttl_overrides ->> p_task_type)::integer from public.semantic_cache_settings s
      where s.org_id = p_org_id and p_task_type is not null),
    (select t.ttl_seconds from private.semantic_cache_ttl t where t.task_type = p_task_type),
    (select s.default_ttl_seconds from public.semantic_cache_settings s where s.org_id = p_org_id),
    3600)
$$;
comment on function private.cache_ttl_seconds(uuid, text) is
  'Cache TTL for a task type: the organization''s override, the task default, the org default, 1 hour.';
revoke all on function private.cache_ttl_seconds(uuid, text) from public;
grant execute on function private.cache_ttl_seconds(uuid, text) to service_role;
