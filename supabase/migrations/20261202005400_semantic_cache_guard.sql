-- The lexical guard, second version: the first compared entities by capitalization, which users' own
-- casing defeats ("capital of france"), and required equal polarity words, which paraphrases vary. Now
-- entries keep the polarity classes present and short hashes of their content words, and the guard
-- refuses (rules and word lists in tokentra_core.cache.guard, which computes the hashes):
--   numbers_dates_negations  numbers, dates and the count of negations differ (guard_key);
--   opposite                 one prompt has a polarity class's opposite (more/less, buy/sell, pros/cons);
--   swapped                  the same words around vs/or/than/to/from/in/with in another order;
--   substituted              one content word replaced by one other, the rest equal (another entity).
-- Lookup and store take the new features, so they are replaced with new signatures.

alter table public.semantic_cache
  add column polarity text[] not null default '{}',
  add column tokens text[] not null default '{}';
comment on column public.semantic_cache.polarity is 'Polarity classes in the prompt, e.g. {merit+, time-}.';
comment on column public.semantic_cache.tokens is 'Short hashes of the distinct content words of the prompt.';

drop function private.cache_lookup(uuid, text, text, text, text, text, extensions.vector, text, text, text, text,
                                   double precision, integer, integer);
drop function private.cache_store(uuid, text, text, text, text, text, text, extensions.vector, text, text, text,
                                  text, text, jsonb, bigint, bigint, numeric, text);

-- Why the guard refuses an entry as the answer to a query, or null when it does not.
create function private.cache_guard_refuses(
  q_guard text, q_polarity text[], q_tokens text[], q_bag text, q_seq text,
  e_guard text, e_polarity text[], e_tokens text[], e_bag text, e_seq text)
returns text
language sql immutable set search_path = '' as $$
  select case
    when q_guard is distinct from e_guard then 'numbers_dates_negations'
    when exists (select 1 from unnest(q_polarity) p
                 where left(p, -1) || case when right(p, 1) = '+' then '-' else '+' end = any (e_polarity))
      then 'opposite'
    when q_bag <> '' and q_bag = e_bag and q_seq <> e_seq then 'swapped'
    when (select count(*) from (select unnest(q_tokens) except select unnest(e_tokens)) a) = 1
     and (select count(*) from (select unnest(e_tokens) except select unnest(q_tokens)) b) = 1
     and q_tokens && e_tokens then 'substituted'
  end
$$;
comment on function private.cache_guard_refuses(text, text[], text[], text, text, text, text[], text[], text, text) is
  'The semantic cache''s lexical guard: why an entry may not answer a query (numbers_dates_negations, opposite, '
  'swapped, substituted), or null.';

create function private.cache_lookup(
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
    -- Filters are applied after the index scan; iterative scans keep reading the graph until enough
    -- rows of this scope are found, instead of returning too few.
    perform set_config('hnsw.iterative_scan', 'relaxed_order', true);
    perform set_config('hnsw.ef_search', greatest(p_ef_search, p_candidates)::text, true);
    for candidate in execute format($q$
      with nearest as materialized (
        select c.id, c.guard_key, c.polarity, c.tokens, c.bag_hash, c.seq_hash, c.threshold, c.response, c.input_tokens,
               c.output_tokens, c.cost_usd,
               (c.embedding::extensions.%1$s(%2$s)) operator(extensions.<=>) $1::extensions.%1$s(%2$s) as distance
        from public.semantic_cache c
        where c.embedding_dims = %2$s and c.org_id = $2 and c.model = $3 and c.params_hash = $4
          and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
          and c.expires_at > now()
        order by (c.embedding::extensions.%1$s(%2$s)) operator(extensions.<=>) $1::extensions.%1$s(%2$s)
        limit $8)
      select * from nearest order by distance$q$, vtype, dims)
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
    update public.semantic_cache c set hits = c.hits + 1, last_hit_at = now(), saved_usd = c.saved_usd + c.cost_usd
     where c.id = hit.id;
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
  'Semantic cache lookup for one organization: exact hash, then HNSW similarity behind the lexical guard; '
  'records the outcome. Outcomes: disabled, exact, semantic, shadow_exact, shadow_semantic, miss.';
revoke all on function private.cache_lookup(uuid, text, text, text, text, text, extensions.vector, text, text, text[],
                                            text[], text, text, double precision, integer, integer) from public;
grant execute on function private.cache_lookup(uuid, text, text, text, text, text, extensions.vector, text, text,
                                               text[], text[], text, text, double precision, integer, integer) to service_role;

-- Keep an answer for later lookups of the same scope: with its response only if the organization
-- opted in, with nothing at all if the cache is off or the task type is never cached.
create function private.cache_store(
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
     prompt_text, expires_at)
  values (p_org_id, coalesce(p_provider, ''), p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
          p_prompt_hash, p_embedding, p_embedding_model, p_guard_key, coalesce(p_polarity, '{}'),
          coalesce(p_tokens, '{}'), p_bag_hash, p_seq_hash, p_task_type,
          case when settings.store_responses then p_response end, greatest(p_input_tokens, 0),
          greatest(p_output_tokens, 0), greatest(coalesce(p_cost_usd, 0), 0), p_prompt_text, expiry)
  on conflict (org_id, model, params_hash, system_prompt_hash, context_hash, prompt_hash) do update set
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
revoke all on function private.cache_store(uuid, text, text, text, text, text, text, extensions.vector, text, text,
                                           text[], text[], text, text, text, jsonb, bigint, bigint, numeric, text) from public;
grant execute on function private.cache_store(uuid, text, text, text, text, text, text, extensions.vector, text, text,
                                              text[], text[], text, text, text, jsonb, bigint, bigint, numeric, text) to service_role;

revoke all on function private.cache_guard_refuses(text, text[], text[], text, text, text, text[], text[], text, text)
  from public;
