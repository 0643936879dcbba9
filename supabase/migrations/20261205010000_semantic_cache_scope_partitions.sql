-- Semantic cache entries partitioned by lookup scope rather than by organization.
--
-- A lookup searches one scope: organization, model, parameters, system prompt and earlier turns. With a
-- partition per organization, a large organization's partition holds all of its scopes, and a filtered
-- HNSW walk reads past every other scope's neighbours to gather enough of its own: with eight scopes of
-- equal size, about eight times the graph reads of a graph holding the scope alone. Partitions by a hash
-- of the scope, 128 of them, make a large scope most of what its partition's graph holds, and a lookup
-- still reads one partition (the scope key is a literal in its statements). An organization's entries now
-- lie in several partitions; row level security filters by organization as before, and every statement
-- on the entries filters by organization as before.
--
-- The key is computed in SQL (private.cache_scope_key) and stored on the row, because a partition key
-- cannot be a generated column nor be set by a trigger; a check constraint keeps it equal to the hash of
-- the row's scope, so an entry always lies where its scope's lookups search.

create function private.cache_scope_key(
  p_org_id uuid, p_model text, p_params_hash text, p_system_prompt_hash text, p_context_hash text)
returns bigint
language sql immutable strict parallel safe set search_path = '' as $$
  -- The model's length first: no two scopes' texts are the same string.
  select pg_catalog.hashtextextended(
    p_org_id::text || '/' || pg_catalog.length(p_model)::text || '/' || p_model || '/' || p_params_hash || '/'
      || p_system_prompt_hash || '/' || p_context_hash, 0)
$$;
comment on function private.cache_scope_key(uuid, text, text, text, text) is
  'The semantic cache''s partition key: a 64-bit hash of a lookup scope (organization, model, parameters hash, '
  'system prompt hash, earlier turns'' hash).';

alter table public.semantic_cache rename to semantic_cache_by_org;
alter table private.semantic_cache_entry_hits drop constraint semantic_cache_entry_hits_entry_fkey;

create table public.semantic_cache (
  like public.semantic_cache_by_org
  including defaults including constraints including generated including comments including storage,
  scope_key bigint not null,
  constraint scope_key_is_the_scopes check (
    scope_key = private.cache_scope_key(org_id, model, params_hash, system_prompt_hash, context_hash))
) partition by hash (scope_key);
comment on table public.semantic_cache is
  'Semantic cache entries: embeddings and prompt hashes per organization and scope, responses on opt-in '
  '(hash partitions by scope_key, one HNSW graph per partition and embedding dimension).';
comment on column public.semantic_cache.scope_key is
  'private.cache_scope_key of the row''s scope: the partition key, given by whoever inserts the row.';

do $$
begin
  for i in 0..127 loop
    execute format('create table public.semantic_cache_p%s partition of public.semantic_cache '
                   'for values with (modulus 128, remainder %s)', lpad(i::text, 3, '0'), i);
    -- Reached only through the parent (whose policies apply): nobody else may read a partition itself.
    execute format('alter table public.semantic_cache_p%s enable row level security', lpad(i::text, 3, '0'));
  end loop;
end
$$;

insert into public.semantic_cache
  (id, org_id, model, embedding_model, embedding, prompt_hash, prompt_text, response, input_tokens, output_tokens,
   cost_usd, expires_at, created_at, provider, system_prompt_hash, context_hash, params_hash, task_type, guard_key,
   bag_hash, seq_hash, threshold, polarity, tokens, scope_key)
select id, org_id, model, embedding_model, embedding, prompt_hash, prompt_text, response, input_tokens,
       output_tokens, cost_usd, expires_at, created_at, provider, system_prompt_hash, context_hash, params_hash,
       task_type, guard_key, bag_hash, seq_hash, threshold, polarity, tokens,
       private.cache_scope_key(org_id, model, params_hash, system_prompt_hash, context_hash)
from public.semantic_cache_by_org;
drop table public.semantic_cache_by_org;

alter table public.semantic_cache
  add constraint semantic_cache_pkey primary key (id, scope_key),
  add constraint semantic_cache_org_id_fkey foreign key (org_id) references public.organizations (id) on delete cascade;

-- The hit counters follow their entry by its new key.
alter table private.semantic_cache_entry_hits add column scope_key bigint;
update private.semantic_cache_entry_hits h set scope_key = c.scope_key
from public.semantic_cache c where c.id = h.entry_id and c.org_id = h.org_id;
delete from private.semantic_cache_entry_hits where scope_key is null;
alter table private.semantic_cache_entry_hits
  alter column scope_key set not null,
  add constraint semantic_cache_entry_hits_entry_fkey foreign key (entry_id, scope_key)
    references public.semantic_cache (id, scope_key) on delete cascade;

-- A unique key must hold the partition key; the scope key adds nothing else to the exact key's meaning.
create unique index semantic_cache_exact_key on public.semantic_cache
  (org_id, model, params_hash, system_prompt_hash, context_hash, prompt_hash, scope_key);
create index semantic_cache_scope_idx on public.semantic_cache
  (org_id, model, params_hash, embedding_dims, system_prompt_hash, context_hash);
create index semantic_cache_expiry_idx on public.semantic_cache (expires_at);

select private.create_tenant_policies('public.semantic_cache', 'cache');
grant select, insert, update, delete on public.semantic_cache to authenticated;
create trigger keep_prompt_only_on_opt_in before insert or update on public.semantic_cache
  for each row execute function private.keep_prompt_only_on_opt_in();

-- The graphs (private.ensure_semantic_cache_index builds one per partition), after the rows are in.
select private.ensure_semantic_cache_index(384);
select private.ensure_semantic_cache_index(1536);
