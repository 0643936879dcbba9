-- A lookup's own CPU beyond its walk of the graph went to planning: every statement on the entries is
-- planned per call (the scope key is a literal), and the helpers it calls were planned per call too. A SQL
-- function with a SET clause is never inlined, so the scope key and the scope's partition (single
-- expressions over pg_catalog functions, every name qualified) were each run as a function whose body was
-- planned at each lookup; without the clause they are inlined into the expression that calls them. The
-- hourly statistics upsert was a SQL function (its insert planned at every call); in PL/pgSQL its plan is
-- kept by the connection. And the lookup's statements name the scope's partition instead of the
-- partitioned table: planning over one table costs about half planning over the partitioned one.

alter function private.cache_scope_key(uuid, text, text, text, text) reset search_path;
alter function private.cache_scope_partition(bigint) reset search_path;

create or replace function private.count_cache_outcome(p_org_id uuid, p_model text, p_outcome text,
                                                       p_rejections integer, p_input_tokens bigint,
                                                       p_output_tokens bigint, p_cost_usd numeric)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into public.semantic_cache_stats as t
    (org_id, hour, model, lookups, exact_hits, semantic_hits, shadow_hits, misses, guard_rejections, stores,
     saved_input_tokens, saved_output_tokens, saved_usd, shadow_saved_usd)
  select p_org_id, date_trunc('hour', now(), 'UTC'), p_model,
         (p_outcome <> 'store')::int, (p_outcome = 'exact')::int, (p_outcome = 'semantic')::int,
         (p_outcome like 'shadow%')::int, (p_outcome = 'miss')::int, coalesce(p_rejections, 0),
         (p_outcome = 'store')::int,
         case when p_outcome in ('exact', 'semantic') then p_input_tokens else 0 end,
         case when p_outcome in ('exact', 'semantic') then p_output_tokens else 0 end,
         case when p_outcome in ('exact', 'semantic') then p_cost_usd else 0 end,
         case when p_outcome like 'shadow%' then p_cost_usd else 0 end
  on conflict (org_id, hour, model) do update set
    lookups = t.lookups + excluded.lookups, exact_hits = t.exact_hits + excluded.exact_hits,
    semantic_hits = t.semantic_hits + excluded.semantic_hits, shadow_hits = t.shadow_hits + excluded.shadow_hits,
    misses = t.misses + excluded.misses, guard_rejections = t.guard_rejections + excluded.guard_rejections,
    stores = t.stores + excluded.stores, saved_input_tokens = t.saved_input_tokens + excluded.saved_input_tokens,
    saved_output_tokens = t.saved_output_tokens + excluded.saved_output_tokens,
    saved_usd = t.saved_usd + excluded.saved_usd, shadow_saved_usd = t.shadow_saved_usd + excluded.shadow_saved_usd;
end
$$;

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
  scope_size bigint;
  partition_rows real;
  entries regclass := coalesce(private.cache_scope_partition(scope), 'public.semantic_cache'::regclass);
begin
  if p_candidates is null or p_candidates < 1 or p_candidates > 1000 then
    raise exception 'p_candidates: % is not between 1 and 1000', p_candidates using errcode = '22023';
  end if;
  if scope is null then  -- a part of the scope is missing: no entry has it
    return;
  end if;
  select s.entries into scope_size from private.semantic_cache_scope_sizes s
  where s.scope_key = scope and s.org_id = p_org_id and s.embedding_dims = dims;
  if scope_size is null then
    -- No counter (entries written with triggers off): count the scope as before, up to what matters.
    execute format($q$
      select count(*) from (
        select 1 from %s c
        where c.scope_key = %s and c.org_id = $6 and c.model = $1 and c.params_hash = $2 and c.embedding_dims = $3
          and c.system_prompt_hash = $4 and c.context_hash = $5
        limit 2001) s$q$, entries, scope)
      into scope_size using p_model, p_params_hash, dims, p_system_prompt_hash, p_context_hash, p_org_id;
  end if;
  if scope_size > 2000 then
    select c.reltuples into partition_rows from pg_catalog.pg_class c where c.oid = entries;
  end if;
  -- The statements name the scope's partition itself (the scope key stays a literal in them): a plan
  -- over a parameter would open and lock every partition on every lookup, and planning over the
  -- partitioned table costs twice planning over the one partition.
  if scope_size <= 2000 or scope_size * 3 < partition_rows then
    -- The function form is not the indexed operator, so the planner cannot pick the HNSW index.
    return query execute format($q$
      select c.id, extensions.cosine_distance(c.embedding, $1)
      from %3$s c
      where c.embedding_dims = %1$s and c.scope_key = %2$s and c.org_id = $2 and c.model = $3 and c.params_hash = $4
        and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
        and c.expires_at > now()
      order by 2
      limit $8$q$, dims, scope, entries)
      using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
            p_embedding_model, p_candidates;
    return;
  end if;
  perform set_config('hnsw.iterative_scan', 'relaxed_order', true);
  perform set_config('hnsw.ef_search', greatest(p_ef_search, p_candidates)::text, true);
  return query execute format($q$
    with walked as materialized (
      select c.id, c.embedding
      from %3$s c
      where c.embedding_dims = %1$s and c.scope_key = %2$s and c.org_id = $2 and c.model = $3
        and c.params_hash = $4 and c.system_prompt_hash = $5 and c.context_hash = $6 and c.embedding_model = $7
        and c.expires_at > now()
      order by (c.embedding::extensions.halfvec(%1$s)) operator(extensions.<=>) $1::extensions.halfvec(%1$s)
      limit $9)
    select w.id, extensions.cosine_distance(w.embedding, $1) from walked w order by 2 limit $8$q$, dims, scope, entries)
    using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
          p_embedding_model, p_candidates, greatest(p_ef_search, p_candidates);
end
$$;
comment on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer) is
  'The nearest unexpired entries of one semantic cache scope by cosine distance: exact for scopes up to 2,000 '
  'entries or under a third of their partition, else the HNSW graph of the scope''s partition gathering '
  'p_ef_search rows, re-ranked exactly.';

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
  entries regclass := coalesce(private.cache_scope_partition(coalesce(scope, 0)), 'public.semantic_cache'::regclass);
begin
  select * into settings from public.semantic_cache_settings s where s.org_id = p_org_id;
  if not found or not settings.enabled then
    return query select 'disabled'::text, null::uuid, null::float8, null::jsonb, 0::bigint, 0::bigint,
                        0::numeric, 0;
    return;
  end if;
  threshold := coalesce(settings.similarity_threshold, p_threshold);

  -- The statements on the entries name the scope's partition, the scope key a literal in them: each is
  -- planned for that one table (a plan over a parameter would open and lock every partition).
  execute format($q$
    select c.id, c.response, c.input_tokens, c.output_tokens, c.cost_usd
    from %s c
    where c.scope_key = %s and c.org_id = $6 and c.model = $1 and c.params_hash = $2
      and c.system_prompt_hash = $3 and c.context_hash = $4 and c.prompt_hash = $5
      and c.expires_at > now()$q$, entries, coalesce(scope, 0))
    into hit using p_model, p_params_hash, p_system_prompt_hash, p_context_hash, p_prompt_hash, p_org_id;
  if hit.id is not null then
    found_hit := true;
    kind := 'exact';
  elsif p_embedding is not null then
    for candidate in execute format($q$
      select c.id, c.guard_key, c.polarity, c.tokens, c.bag_hash, c.seq_hash, c.threshold, c.response,
             c.input_tokens, c.output_tokens, c.cost_usd, n.distance
      from private.cache_nearest(%1$L, $1, $2, $3, $4, $5, $6, $7, $8) n
      join %3$s c on c.id = n.entry_id and c.scope_key = %2$s and c.org_id = %1$L
      order by n.distance$q$, p_org_id, coalesce(scope, 0), entries)
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
