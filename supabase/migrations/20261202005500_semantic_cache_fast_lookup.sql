-- Semantic cache lookups, faster:
-- * A hit used to update its entry's counters in the entry row. The row is large (its vector) and its
--   page rarely has room for a HOT update, so every hit wrote a new row version and inserted it into
--   the HNSW graph again: tens of milliseconds per hit. Counters per entry now live in their own table.
-- * A small scope (up to 2,000 entries of one organization, model, parameters and system prompt) is
--   searched exactly through its btree index: cheaper than an HNSW walk that throws away what belongs
--   to other scopes, and never misses. Larger scopes use the HNSW index as before.

create table private.semantic_cache_entry_hits (
  entry_id uuid primary key references public.semantic_cache (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  hits bigint not null default 0,
  last_hit_at timestamptz,
  saved_usd numeric(20, 12) not null default 0
);
alter table private.semantic_cache_entry_hits enable row level security;
comment on table private.semantic_cache_entry_hits is
  'Hits per semantic cache entry (kept apart from the entry so a hit never rewrites the row and its vector).';

alter table public.semantic_cache drop column hits, drop column last_hit_at, drop column saved_usd;

create or replace function private.cache_lookup(
  p_org_id uuid, p_model text, p_params_hash text, p_system_prompt_hash text, p_context_hash text,
  p_prompt_hash text, p_embedding extensions.vector, p_embedding_model text, p_guard_key text,
  p_polarity text[], p_tokens text[], p_bag_hash text, p_seq_hash text, p_threshold double precision,
  p_candidates integer default 10, p_ef_search integer default 100)
returns table (outcome text, entry_id uuid, similarity double precision, response jsonb, input_tokens bigint,
               output_tokens bigint, cost_usd numeric, guard_rejections integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  settings public.semantic_cache_settings;
  threshold double precision;
  hit record;
  candidate record;
  found_hit boolean := false;
  kind text;
  dims integer;
  vtype text;
  rejected integer := 0;
  sim double precision := 1.0;
  scope_size integer;
  order_by text;
begin
  select * into settings from public.semantic_cache_settings s where s.org_id = p_org_id;
  if not found or not settings.enabled then
    return query select 'disabled'::text, null::uuid, null::float8, null::jsonb, 0::bigint, 0::bigint,
                        0::numeric, 0;
    return;
  end if;
  threshold := coalesce(settings.similarity_threshold, p_threshold);

  select c.id, c.response, c.input_tokens, c.output_tokens, c.cost_usd into hit
  from public.semantic_cache c
  where c.org_id = p_org_id and c.model = p_model and c.params_hash = p_params_hash
    and c.system_prompt_hash = p_system_prompt_hash and c.context_hash = p_context_hash
    and c.prompt_hash = p_prompt_hash and c.expires_at > now();
  if found then
    found_hit := true;
    kind := 'exact';
  elsif p_embedding is not null then
    dims := extensions.vector_dims(p_embedding);
    vtype := case when dims <= 2000 then 'vector' else 'halfvec' end;
    -- A scope of up to 2,000 entries is searched exactly (its btree index, then a sort): faster than a
    -- graph walk that filters most of what it reads, and never misses. Larger scopes walk the HNSW graph;
    -- filters apply after the index scan, and iterative scans keep reading until enough rows of this
    -- scope are found instead of returning too few.
    select count(*) into scope_size from (
      select 1 from public.semantic_cache c
      where c.org_id = p_org_id and c.model = p_model and c.params_hash = p_params_hash
        and c.embedding_dims = dims and c.system_prompt_hash = p_system_prompt_hash
        and c.context_hash = p_context_hash
      limit 2001) s;
    if scope_size <= 2000 then
      -- The function form is not the indexed operator, so the planner cannot pick the HNSW index.
      order_by := format('extensions.cosine_distance(c.embedding, $1::extensions.%1$s(%2$s))', vtype, dims);
    else
      order_by := format('(c.embedding::extensions.%1$s(%2$s)) operator(extensions.<=>) $1::extensions.%1$s(%2$s)',
                         vtype, dims);
      perform set_config('hnsw.iterative_scan', 'relaxed_order', true);
      perform set_config('hnsw.ef_search', greatest(p_ef_search, p_candidates)::text, true);
    end if;
    for candidate in execute format($q$
      with nearest as materialized (
        select c.id, c.guard_key, c.polarity, c.tokens, c.bag_hash, c.seq_hash, c.threshold, c.response, c.input_tokens,
               c.output_tokens, c.cost_usd,
               %3$s as distance
        from public.semantic_cache c
        where c.embedding_dims = %2$s and c.org_id = $2 and c.model = $3 and c.params_hash = $4
          and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
          and c.expires_at > now()
        order by %3$s
        limit $8)
      select * from nearest order by distance$q$, vtype, dims, order_by)
      using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
            p_embedding_model, p_candidates
    loop
      exit when 1 - candidate.distance < threshold;  -- ordered: every later one is farther
      if private.cache_guard_refuses(p_guard_key, p_polarity, p_tokens, p_bag_hash, p_seq_hash, candidate.guard_key,
                                     candidate.polarity, candidate.tokens, candidate.bag_hash, candidate.seq_hash)
         is not null then
        rejected := rejected + 1;
        continue;
      end if;
      continue when 1 - candidate.distance < coalesce(candidate.threshold, 0);
      hit := candidate;
      sim := 1 - candidate.distance;
      found_hit := true;
      kind := 'semantic';
      exit;
    end loop;
  end if;

  if not found_hit then
    perform private.count_cache_outcome(p_org_id, p_model, 'miss', rejected, 0, 0, 0);
    return query select 'miss'::text, null::uuid, null::float8, null::jsonb, 0::bigint, 0::bigint, 0::numeric,
                        rejected;
    return;
  end if;
  if hit.response is null or not settings.store_responses then
    kind := 'shadow_' || kind;
  else
    insert into private.semantic_cache_entry_hits as h (entry_id, org_id, hits, last_hit_at, saved_usd)
    values (hit.id, p_org_id, 1, now(), hit.cost_usd)
    on conflict on constraint semantic_cache_entry_hits_pkey
    do update set hits = h.hits + 1, last_hit_at = now(), saved_usd = h.saved_usd + excluded.saved_usd;
  end if;
  perform private.count_cache_outcome(p_org_id, p_model, kind, rejected, hit.input_tokens, hit.output_tokens,
                                      hit.cost_usd);
  return query select kind, hit.id, sim,
                      case when kind like 'shadow%' then null else hit.response end,
                      hit.input_tokens, hit.output_tokens, hit.cost_usd, rejected;
end
$$;
comment on function private.cache_lookup(uuid, text, text, text, text, text, extensions.vector, text, text, text[],
                                         text[], text, text, double precision, integer, integer) is
  'Semantic cache lookup for one organization: exact hash, then similarity (exact scan for scopes up to 2,000 '
  'entries, HNSW above) behind the lexical guard; '
  'records the outcome. Outcomes: disabled, exact, semantic, shadow_exact, shadow_semantic, miss.';
revoke all on function private.cache_lookup(uuid, text, text, text, text, text, extensions.vector, text, text, text[],
                                            text[], text, text, double precision, integer, integer) from public;
grant execute on function private.cache_lookup(uuid, text, text, text, text, text, extensions.vector, text, text,
                                               text[], text[], text, text, double precision, integer, integer) to service_role;

