-- Semantic cache entries partitioned by organization, with half-precision HNSW indexes.
--
-- One HNSW graph over every organization's entries makes a filtered lookup walk past other
-- organizations' neighbours: at a million entries a scope holding 1% of them needs a hundred times the
-- graph reads to find its ten nearest. Hash partitions by organization give each partition its own graph,
-- so a lookup walks only the graph of its organization's partition (pruned by org_id) and the filter
-- keeps most of what it reads. The graphs are built over halfvec: half the size to build and to read,
-- and candidates are re-ranked by their full-precision distance, so similarities are the same as before.
--
-- A partitioned table's unique keys must contain the partition key: the primary key becomes (id, org_id)
-- and the per-entry hit counters reference both.

alter table public.semantic_cache rename to semantic_cache_unpartitioned;
alter table private.semantic_cache_entry_hits drop constraint semantic_cache_entry_hits_entry_id_fkey;

create table public.semantic_cache (
  like public.semantic_cache_unpartitioned
  including defaults including constraints including generated including comments including storage
) partition by hash (org_id);
comment on table public.semantic_cache is
  'Semantic cache entries: embeddings and prompt hashes per organization and scope, responses on opt-in '
  '(hash partitions by organization, one HNSW graph per partition and embedding dimension).';

do $$
begin
  for i in 0..31 loop
    execute format('create table public.semantic_cache_p%s partition of public.semantic_cache '
                   'for values with (modulus 32, remainder %s)', lpad(i::text, 2, '0'), i);
    -- Reached only through the parent (whose policies apply): nobody else may read a partition itself.
    execute format('alter table public.semantic_cache_p%s enable row level security', lpad(i::text, 2, '0'));
  end loop;
end
$$;

insert into public.semantic_cache
  (id, org_id, model, embedding_model, embedding, prompt_hash, prompt_text, response, input_tokens, output_tokens,
   cost_usd, expires_at, created_at, provider, system_prompt_hash, context_hash, params_hash, task_type, guard_key,
   bag_hash, seq_hash, threshold, polarity, tokens)
select id, org_id, model, embedding_model, embedding, prompt_hash, prompt_text, response, input_tokens,
       output_tokens, cost_usd, expires_at, created_at, provider, system_prompt_hash, context_hash, params_hash,
       task_type, guard_key, bag_hash, seq_hash, threshold, polarity, tokens
from public.semantic_cache_unpartitioned;
drop table public.semantic_cache_unpartitioned;

alter table public.semantic_cache
  add constraint semantic_cache_pkey primary key (id, org_id),
  add constraint semantic_cache_org_id_fkey foreign key (org_id) references public.organizations (id) on delete cascade;
alter table private.semantic_cache_entry_hits
  add constraint semantic_cache_entry_hits_entry_fkey foreign key (entry_id, org_id)
    references public.semantic_cache (id, org_id) on delete cascade;

create unique index semantic_cache_exact_key on public.semantic_cache
  (org_id, model, params_hash, system_prompt_hash, context_hash, prompt_hash);
create index semantic_cache_scope_idx on public.semantic_cache
  (org_id, model, params_hash, embedding_dims, system_prompt_hash, context_hash);
create index semantic_cache_expiry_idx on public.semantic_cache (expires_at);

select private.create_tenant_policies('public.semantic_cache', 'cache');
grant select, insert, update, delete on public.semantic_cache to authenticated;
create trigger keep_prompt_only_on_opt_in before insert or update on public.semantic_cache
  for each row execute function private.keep_prompt_only_on_opt_in();

-- One HNSW index per embedding dimension in use, over halfvec (up to 4,000 dimensions), on every
-- partition. Building one needs its graph in maintenance_work_mem to be fast: set it in the session.
create or replace function private.ensure_semantic_cache_index(dims integer) returns text
language plpgsql volatile set search_path = '' as $$
declare
  name text := format('semantic_cache_embedding_%s_idx', dims);
begin
  if dims is null or dims < 1 or dims > 4000 then
    raise exception 'dims: % is not a dimension an HNSW index supports (1 to 4000)', dims
      using errcode = '22023';
  end if;
  if to_regclass('public.' || name) is not null then
    return format('%s exists', name);
  end if;
  execute format(
    'create index %I on public.semantic_cache using hnsw ((embedding::extensions.halfvec(%s)) '
    'extensions.halfvec_cosine_ops) where embedding_dims = %s', name, dims, dims);
  return format('%s created', name);
end
$$;
comment on function private.ensure_semantic_cache_index(integer) is
  'Create the partial halfvec HNSW index for one embedding dimension (on every partition) if missing; idempotent.';

select private.ensure_semantic_cache_index(384);
select private.ensure_semantic_cache_index(1536);
