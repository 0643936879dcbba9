-- Semantic cache entries: scoped so that an answer is only reused where it would have been the same
-- answer, with a vector column whose dimension follows the configured embedder.
--
-- The landed table fixed vector(1536) with one HNSW index. Here the column becomes an unconstrained
-- `vector` and each dimension in use gets its own partial HNSW index over an expression cast to that
-- dimension (pgvector indexes need a fixed dimension; partial expression indexes give one per size).
-- A lookup names the dimension in its query, so the planner picks that dimension's index.

drop index if exists public.semantic_cache_embedding_idx;
drop index if exists public.semantic_cache_org_hash_idx;

alter table public.semantic_cache
  alter column embedding type extensions.vector,
  -- A prompt longer than the embedder reads is cached for exact matches only, without a vector.
  alter column embedding drop not null,
  -- Shadow entries (cache on, responses not opted in) keep no response: they only count would-be hits.
  alter column response drop not null,
  add column embedding_dims integer generated always as (extensions.vector_dims(embedding)) stored,
  add column provider text not null default '',
  -- '' when absent, so equality filters stay index-friendly.
  add column system_prompt_hash text not null default '',
  add column context_hash text not null default '',
  add column params_hash text not null default '',
  add column task_type text,
  -- Hashes of the lexical guard's features (numbers, dates, negations, entities in order, polarity
  -- words), of the bag of content words and of their sequence. Never text.
  add column guard_key text not null default '',
  add column bag_hash text not null default '',
  add column seq_hash text not null default '',
  -- Learned per entry: raised when a hit on this entry is reported wrong.
  add column threshold double precision,
  add column saved_usd numeric(20, 12) not null default 0,
  add constraint tokens_are_not_negative check (input_tokens >= 0 and output_tokens >= 0 and cost_usd >= 0),
  add constraint threshold_is_a_similarity check (threshold is null or threshold between 0 and 1);

comment on column public.semantic_cache.embedding_dims is 'Dimension of the embedding (selects the HNSW index).';
comment on column public.semantic_cache.params_hash is
  'Hash of the parameters that change an answer: temperature, top_p, tools, tool_choice, response format, ...';
comment on column public.semantic_cache.context_hash is 'Hash of the turns before the last user message.';
comment on column public.semantic_cache.guard_key is
  'Hash of the numbers, dates, negations, entities (in order) and polarity words of the prompt.';
comment on column public.semantic_cache.response is
  'The provider''s answer as JSON, only for organizations that opted in (semantic_cache_settings.store_responses); '
  'stored as the database stores any row (at-rest encryption is the platform''s), not encrypted by TokenTRA.';

-- Exact match: one entry per prompt within its scope (the embedder is not part of the key).
create unique index semantic_cache_exact_key on public.semantic_cache
  (org_id, model, params_hash, system_prompt_hash, context_hash, prompt_hash);
-- The filtered scan the planner can prefer to HNSW for a scope holding few entries.
create index semantic_cache_scope_idx on public.semantic_cache
  (org_id, model, params_hash, embedding_dims, system_prompt_hash, context_hash);
create index semantic_cache_expiry_idx on public.semantic_cache (expires_at);

-- One HNSW index per embedding dimension in use. Above 2,000 dimensions (HNSW's limit for vector)
-- the index is built over halfvec, which allows 4,000.
create function private.ensure_semantic_cache_index(dims integer) returns text
language plpgsql volatile set search_path = '' as $$
declare
  name text := format('semantic_cache_embedding_%s_idx', dims);
  kind text := case when dims <= 2000 then 'vector' else 'halfvec' end;
begin
  if dims is null or dims < 1 or dims > 4000 then
    raise exception 'dims: % is not a dimension an HNSW index supports (1 to 4000)', dims
      using errcode = '22023';
  end if;
  if to_regclass('public.' || name) is not null then
    return format('%s exists', name);
  end if;
  execute format(
    'create index %I on public.semantic_cache using hnsw ((embedding::extensions.%s(%s)) extensions.%s_cosine_ops) '
    'where embedding_dims = %s', name, kind, dims, kind, dims);
  return format('%s created', name);
end
$$;
comment on function private.ensure_semantic_cache_index(integer) is
  'Create the partial HNSW index for one embedding dimension if missing; idempotent.';
revoke all on function private.ensure_semantic_cache_index(integer) from public;
grant execute on function private.ensure_semantic_cache_index(integer) to service_role;

-- The local embedder (all-MiniLM-L6-v2, 384) and OpenAI's text-embedding-3-small (1536).
select private.ensure_semantic_cache_index(384);
select private.ensure_semantic_cache_index(1536);
