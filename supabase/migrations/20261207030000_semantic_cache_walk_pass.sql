-- A lookup that walks its partition's graph gathered hnsw.ef_search rows of the partition in one pass and
-- kept those of its scope; with ef_search equal to the walk's limit, a single row of another scope in the
-- pass (likely whenever the scope is not the whole partition) made the iterative scan run a second pass,
-- about doubling the walk: at 1,000,000 entries, a 62,500-entry scope in a 65,000-row partition walked in
-- a median 5.6 to 6.0 ms of CPU at ef_search 40 against 3.8 to 4.2 ms at 48, for the same 40 rows gathered.
-- The pass is now sized for the scope's share of the partition.

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
  wanted integer;
  share double precision;
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
  -- One pass of the graph gathers hnsw.ef_search rows of the partition, of which only the scope's are kept;
  -- when the pass keeps fewer than the walk's limit, the iterative scan searches again, at the cost of a
  -- second whole pass. So the pass is sized for the scope's share of the partition, with three standard
  -- deviations of room for how many others' rows it happens to meet.
  wanted := greatest(p_ef_search, p_candidates);
  share := case when partition_rows > scope_size then scope_size / partition_rows else 1 end;
  perform set_config('hnsw.ef_search',
                     least(1000, ceil(wanted / share + 3 * sqrt(wanted * (1 - share)) / share))::integer::text, true);
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
          p_embedding_model, p_candidates, wanted;
end
$$;
comment on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer) is
  'The nearest unexpired entries of one semantic cache scope by cosine distance: exact for scopes up to 2,000 '
  'entries or under a third of their partition, else the HNSW graph of the scope''s partition gathering '
  'p_ef_search rows in one pass sized for the scope''s share of the partition, re-ranked exactly.';
