-- The semantic cache's statements on entries, now that entries are partitioned by scope key: an entry is
-- stored with its scope key, and a lookup reads only its scope's partition (the key a literal in each
-- statement). Exact match first, the guard and the thresholds are unchanged.

create or replace function private.cache_nearest(
  p_org_id uuid, p_model text, p_params_hash text, p_system_prompt_hash text, p_context_hash text,
  p_embedding extensions.vector, p_embedding_model text, p_candidates integer default 10,
  p_ef_search integer default 40)
returns table (entry_id uuid, distance double precision)
-- A few rows (p_candidates): joined back to the entries by primary key, not by hashing the partition.
language plpgsql volatile security definer rows 10 set search_path = '' as $$
declare
  dims integer := extensions.vector_dims(p_embedding);
  scope bigint := private.cache_scope_key(p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash);
  scope_size integer;
begin
  if p_candidates is null or p_candidates < 1 or p_candidates > 1000 then
    raise exception 'p_candidates: % is not between 1 and 1000', p_candidates using errcode = '22023';
  end if;
  if scope is null then  -- a part of the scope is missing: no entry has it
    return;
  end if;
  -- The scope key is a literal in the statements, so each is planned for its one partition: a plan
  -- over a parameter would open and lock every partition on every lookup.
  execute format($q$
    select count(*) from (
      select 1 from public.semantic_cache c
      where c.scope_key = %s and c.org_id = $6 and c.model = $1 and c.params_hash = $2 and c.embedding_dims = $3
        and c.system_prompt_hash = $4 and c.context_hash = $5
      limit 2001) s$q$, scope)
    into scope_size using p_model, p_params_hash, dims, p_system_prompt_hash, p_context_hash, p_org_id;
  if scope_size <= 2000 then
    -- The function form is not the indexed operator, so the planner cannot pick the HNSW index.
    return query execute format($q$
      select c.id, extensions.cosine_distance(c.embedding, $1)
      from public.semantic_cache c
      where c.embedding_dims = %1$s and c.scope_key = %2$s and c.org_id = $2 and c.model = $3 and c.params_hash = $4
        and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
        and c.expires_at > now()
      order by 2
      limit $8$q$, dims, scope)
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
      where c.embedding_dims = %1$s and c.scope_key = %2$s and c.org_id = $2 and c.model = $3
        and c.params_hash = $4 and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
        and c.expires_at > now()
      order by (c.embedding::extensions.halfvec(%1$s)) operator(extensions.<=>) $1::extensions.halfvec(%1$s)
      limit $9)
    select w.id, extensions.cosine_distance(w.embedding, $1) from walked w order by 2 limit $8$q$, dims, scope)
    using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
          p_embedding_model, p_candidates, greatest(p_ef_search, p_candidates);
end
$$;
comment on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer) is
  'The nearest unexpired entries of one semantic cache scope by cosine distance: exact for scopes up to 2,000 '
  'entries, else the HNSW graph of the scope''s partition gathering p_ef_search rows, re-ranked exactly.';

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
  scope bigint := private.cache_scope_key(p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash);
begin
  select * into settings from public.semantic_cache_settings s where s.org_id = p_org_id;
  if not found or not settings.enabled then
    return query select 'disabled'::text, null::uuid, null::float8, null::jsonb, 0::bigint, 0::bigint,
                        0::numeric, 0;
    return;
  end if;
  threshold := coalesce(settings.similarity_threshold, p_threshold);

  -- The scope key is a literal in the statements on the entries, so each is planned for its one
  -- partition: a plan over a parameter would open and lock all of them on every lookup.
  execute format($q$
    select c.id, c.response, c.input_tokens, c.output_tokens, c.cost_usd
    from public.semantic_cache c
    where c.scope_key = %s and c.org_id = $6 and c.model = $1 and c.params_hash = $2
      and c.system_prompt_hash = $3 and c.context_hash = $4 and c.prompt_hash = $5
      and c.expires_at > now()$q$, coalesce(scope, 0))
    into hit using p_model, p_params_hash, p_system_prompt_hash, p_context_hash, p_prompt_hash, p_org_id;
  if hit.id is not null then
    found_hit := true;
    kind := 'exact';
  elsif p_embedding is not null then
    for candidate in execute format($q$
      select c.id, c.guard_key, c.polarity, c.tokens, c.bag_hash, c.seq_hash, c.threshold, c.response,
             c.input_tokens, c.output_tokens, c.cost_usd, n.distance
      from private.cache_nearest(%1$L, $1, $2, $3, $4, $5, $6, $7, $8) n
      join public.semantic_cache c on c.id = n.entry_id and c.scope_key = %2$s and c.org_id = %1$L
      order by n.distance$q$, p_org_id, coalesce(scope, 0))
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
    insert into private.semantic_cache_entry_hits as h (entry_id, org_id, scope_key, hits, last_hit_at, saved_usd)
    values (hit.id, p_org_id, scope, 1, now(), hit.cost_usd)
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

-- Keep an answer for later lookups of the same scope: with its response only if the organization
-- opted in, with nothing at all if the cache is off or the task type is never cached.
create or replace function private.cache_store(
  p_org_id uuid, p_provider text, p_model text, p_params_hash text, p_system_prompt_hash text,
  p_context_hash text, p_prompt_hash text, p_embedding extensions.vector, p_embedding_model text,
  p_guard_key text, p_polarity text[], p_tokens text[], p_bag_hash text, p_seq_hash text, p_task_type text,
  p_response jsonb,
  p_input_tokens bigint, p_output_tokens bigint, p_cost_usd numeric, p_prompt_text text default null)
returns table (outcome text, entry_id uuid, expires_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
declare
  settings public.semantic_cache_settings;
  ttl integer;
  stored_id uuid;
  expiry timestamptz;
begin
  select * into settings from public.semantic_cache_settings s where s.org_id = p_org_id;
  if not found or not settings.enabled then
    return query select 'disabled'::text, null::uuid, null::timestamptz;
    return;
  end if;
  ttl := private.cache_ttl_seconds(p_org_id, p_task_type);
  if ttl <= 0 then
    return query select 'not_cacheable'::text, null::uuid, null::timestamptz;
    return;
  end if;
  expiry := now() + make_interval(secs => ttl);
  insert into public.semantic_cache as c
    (org_id, provider, model, params_hash, system_prompt_hash, context_hash, prompt_hash, embedding,
     embedding_model, guard_key, polarity, tokens, bag_hash, seq_hash, task_type, response, input_tokens, output_tokens, cost_usd,
     prompt_text, expires_at, scope_key)
  values (p_org_id, coalesce(p_provider, ''), p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
          p_prompt_hash, p_embedding, p_embedding_model, p_guard_key, coalesce(p_polarity, '{}'),
          coalesce(p_tokens, '{}'), p_bag_hash, p_seq_hash, p_task_type,
          case when settings.store_responses then p_response end, greatest(p_input_tokens, 0),
          greatest(p_output_tokens, 0), greatest(coalesce(p_cost_usd, 0), 0), p_prompt_text, expiry,
          private.cache_scope_key(p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash))
  on conflict (org_id, model, params_hash, system_prompt_hash, context_hash, prompt_hash, scope_key) do update set
    embedding = excluded.embedding, embedding_model = excluded.embedding_model, guard_key = excluded.guard_key,
    polarity = excluded.polarity, tokens = excluded.tokens,
    bag_hash = excluded.bag_hash, seq_hash = excluded.seq_hash, task_type = excluded.task_type,
    response = excluded.response, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
    cost_usd = excluded.cost_usd, prompt_text = excluded.prompt_text, expires_at = excluded.expires_at,
    provider = excluded.provider, created_at = now()
  returning c.id into stored_id;
  perform private.count_cache_outcome(p_org_id, p_model, 'store', 0, 0, 0, 0);
  return query select case when settings.store_responses then 'stored' else 'shadow' end, stored_id, expiry;
end
$$;
comment on function private.cache_store(uuid, text, text, text, text, text, text, extensions.vector, text, text, text[],
                                        text[], text, text, text, jsonb, bigint, bigint, numeric, text) is
  'Store a semantic cache entry (response only on opt-in; nothing when the cache is off or the task type '
  'has TTL 0). Outcomes: disabled, not_cacheable, stored, shadow.';
