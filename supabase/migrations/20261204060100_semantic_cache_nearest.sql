-- The semantic cache's nearest-neighbour search on its own, so the lookup and its benchmark read the
-- same candidates: the nearest entries of one scope (organization, model, parameters, system prompt,
-- earlier turns, embedder), unexpired, ordered by full-precision cosine distance.
--
-- A scope of up to 2,000 entries is searched exactly (its btree index, then a sort): cheaper than a graph
-- walk, and it never misses. A larger scope walks the halfvec HNSW graph of its organization's partition.
-- The filters apply to what the walk returns; an iterative scan keeps walking until enough rows of the
-- scope came back instead of returning too few. The walk gathers `p_ef_search` rows of the scope and the
-- best `p_candidates` of them by full-precision distance are kept, so a larger p_ef_search buys recall.
create function private.cache_nearest(
  p_org_id uuid, p_model text, p_params_hash text, p_system_prompt_hash text, p_context_hash text,
  p_embedding extensions.vector, p_embedding_model text, p_candidates integer default 10,
  p_ef_search integer default 40)
returns table (entry_id uuid, distance double precision)
-- A few rows (p_candidates): joined back to the entries by primary key, not by hashing the partition.
language plpgsql volatile security definer rows 10 set search_path = '' as $$
declare
  dims integer := extensions.vector_dims(p_embedding);
  scope_size integer;
begin
  if p_candidates is null or p_candidates < 1 or p_candidates > 1000 then
    raise exception 'p_candidates: % is not between 1 and 1000', p_candidates using errcode = '22023';
  end if;
  -- The organization is a literal in the statements, so each is planned for its one partition: a plan
  -- over the parameter would open and lock every partition on every lookup.
  execute format($q$
    select count(*) from (
      select 1 from public.semantic_cache c
      where c.org_id = %L and c.model = $1 and c.params_hash = $2 and c.embedding_dims = $3
        and c.system_prompt_hash = $4 and c.context_hash = $5
      limit 2001) s$q$, p_org_id)
    into scope_size using p_model, p_params_hash, dims, p_system_prompt_hash, p_context_hash;
  if scope_size <= 2000 then
    -- The function form is not the indexed operator, so the planner cannot pick the HNSW index.
    return query execute format($q$
      select c.id, extensions.cosine_distance(c.embedding, $1)
      from public.semantic_cache c
      where c.embedding_dims = %1$s and c.org_id = %2$L and c.model = $3 and c.params_hash = $4
        and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
        and c.expires_at > now()
      order by 2
      limit $8$q$, dims, p_org_id)
      using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
            p_embedding_model, p_candidates;
    return;
  end if;
  perform set_config('hnsw.iterative_scan', 'relaxed_order', true);
  perform set_config('hnsw.ef_search', greatest(p_ef_search, p_candidates)::text, true);
  return query execute format($q$
    with walked as materialized (
      select c.id, c.embedding
      from public.semantic_cache c
      where c.embedding_dims = %1$s and c.org_id = %2$L and c.model = $3 and c.params_hash = $4
        and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
        and c.expires_at > now()
      order by (c.embedding::extensions.halfvec(%1$s)) operator(extensions.<=>) $1::extensions.halfvec(%1$s)
      limit $9)
    select w.id, extensions.cosine_distance(w.embedding, $1) from walked w order by 2 limit $8$q$, dims, p_org_id)
    using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
          p_embedding_model, p_candidates, greatest(p_ef_search, p_candidates);
end
$$;
comment on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer) is
  'The nearest unexpired entries of one semantic cache scope by cosine distance: exact for scopes up to 2,000 '
  'entries, else the HNSW graph of the organization''s partition gathering p_ef_search rows, re-ranked exactly.';
revoke all on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer)
  from public;
grant execute on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer)
  to service_role;

create or replace function private.cache_lookup(
  p_org_id uuid, p_model text, p_params_hash text, p_system_prompt_hash text, p_context_hash text,
  p_prompt_hash text, p_embedding extensions.vector, p_embedding_model text, p_guard_key text,
  p_polarity text[], p_tokens text[], p_bag_hash text, p_seq_hash text, p_threshold double precision,
  p_candidates integer default 10, p_ef_search integer default 40)
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
  rejected integer := 0;
  sim double precision := 1.0;
begin
  select * into settings from public.semantic_cache_settings s where s.org_id = p_org_id;
  if not found or not settings.enabled then
    return query select 'disabled'::text, null::uuid, null::float8, null::jsonb, 0::bigint, 0::bigint,
                        0::numeric, 0;
    return;
  end if;
  threshold := coalesce(settings.similarity_threshold, p_threshold);

  -- The organization is a literal in the statements on the entries, so each is planned for its one
  -- partition: a plan over the parameter would open and lock all of them on every lookup.
  execute format($q$
    select c.id, c.response, c.input_tokens, c.output_tokens, c.cost_usd
    from public.semantic_cache c
    where c.org_id = %L and c.model = $1 and c.params_hash = $2 and c.system_prompt_hash = $3
      and c.context_hash = $4 and c.prompt_hash = $5 and c.expires_at > now()$q$, p_org_id)
    into hit using p_model, p_params_hash, p_system_prompt_hash, p_context_hash, p_prompt_hash;
  if hit.id is not null then
    found_hit := true;
    kind := 'exact';
  elsif p_embedding is not null then
    for candidate in execute format($q$
      select c.id, c.guard_key, c.polarity, c.tokens, c.bag_hash, c.seq_hash, c.threshold, c.response,
             c.input_tokens, c.output_tokens, c.cost_usd, n.distance
      from private.cache_nearest(%1$L, $1, $2, $3, $4, $5, $6, $7, $8) n
      join public.semantic_cache c on c.id = n.entry_id and c.org_id = %1$L
      order by n.distance$q$, p_org_id)
      using p_model, p_params_hash, p_system_prompt_hash, p_context_hash, p_embedding, p_embedding_model,
            p_candidates, p_ef_search
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
  'Semantic cache lookup for one organization: exact hash, then the scope''s nearest entries (cache_nearest) '
  'behind the lexical guard; records the outcome. Outcomes: disabled, exact, semantic, shadow_exact, '
  'shadow_semantic, miss.';
