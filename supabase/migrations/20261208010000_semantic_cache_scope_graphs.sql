-- A large scope that shares its partition with other large scopes walked a graph mostly of their rows: at
-- 1,000,000 entries, two 62,500-entry scopes hashed into one partition each walked in a median 4.9 ms (the
-- pass sized for half the partition), and a 4,024-entry scope in a 10,619-row partition in 23 ms, against
-- 2.5 ms for a 62,500-entry scope walking a graph of its own rows only. Hash partitions put scopes
-- together at random, and moving rows between partitions would mean rebuilding graphs under writes; a
-- partial index, one per such scope, gives it a graph of its own without moving anything. The worker
-- builds and drops them concurrently (CREATE INDEX CONCURRENTLY cannot run in a function or transaction),
-- from the plan below; a lookup walks its scope's own graph whenever one is valid. The price: an entry of
-- such a scope is inserted into two graphs.

-- The name of a scope's own graph: one index per scope and dimension, in the schema of the partitions.
create function private.cache_scope_graph_name(p_scope_key bigint, p_dims integer) returns text
language sql immutable parallel safe as $$
  select 'semantic_cache_scope_' || pg_catalog.to_hex(p_scope_key) || '_' || p_dims::text
$$;
comment on function private.cache_scope_graph_name(bigint, integer) is
  'The name of the partial HNSW index giving one semantic cache scope (and dimension) a graph of its own.';

-- Scopes above the exact-search limit (2,000 entries) that are under 90% of their partition's rows of their
-- dimension get a graph; one is kept until its scope falls to 1,000 entries or reaches 95% of the partition
-- (room on both sides, so that a scope at a limit is not built and dropped in turn), and an invalid one (a
-- concurrent build that failed) is dropped and built again.
create function private.semantic_cache_scope_graph_changes()
returns table (action text, index_name text, scope_key bigint, embedding_dims integer, entries bigint,
               share double precision, statement text)
language sql stable set search_path = '' as $$
  with sizes as (
    select s.scope_key, s.embedding_dims, sum(s.entries)::bigint entries,
           private.cache_scope_partition(s.scope_key) part
    from private.semantic_cache_scope_sizes s
    where s.entries > 0
    group by s.scope_key, s.embedding_dims
  ), scopes as (
    select z.*, private.cache_scope_graph_name(z.scope_key, z.embedding_dims) index_name,
           z.entries::float8 / sum(z.entries) over (partition by z.part, z.embedding_dims) share
    from sizes z
    where z.part is not null
  ), existing as (
    select c.relname::text index_name, i.indisvalid valid
    from pg_catalog.pg_index i
    join pg_catalog.pg_class c on c.oid = i.indexrelid
    where c.relnamespace = 'public'::regnamespace and c.relname ~ '^semantic_cache_scope_[0-9a-f]{1,16}_[0-9]{1,4}$'
  ), decided as (
    select coalesce(s.index_name, e.index_name) index_name, s.scope_key, s.embedding_dims, s.entries, s.share,
           s.part, e.valid,
           coalesce(case when e.valid then s.entries > 1000 and s.share < 0.95
                         else s.entries > 2000 and s.share < 0.9 end, false) wanted
    from scopes s
    full join existing e on e.index_name = s.index_name
  )
  select 'drop', d.index_name, d.scope_key, d.embedding_dims, d.entries, d.share,
         format('drop index concurrently if exists public.%I', d.index_name)
  from decided d
  where d.valid is not null and (not d.wanted or not d.valid)
  union all
  select 'create', d.index_name, d.scope_key, d.embedding_dims, d.entries, d.share,
         format('create index concurrently if not exists %I on %s using hnsw '
                '((embedding::extensions.halfvec(%s)) extensions.halfvec_cosine_ops) '
                'where embedding_dims = %s and scope_key = %s',
                d.index_name, d.part, d.embedding_dims, d.embedding_dims, d.scope_key)
  from decided d
  where d.wanted and d.valid is distinct from true
  order by 1 desc, 5 desc
$$;
comment on function private.semantic_cache_scope_graph_changes() is
  'The partial HNSW indexes to drop, then build (largest scope first), so that every semantic cache scope '
  'above 2,000 entries that shares its partition has a graph of its own; each row carries the statement, '
  'run outside a transaction by the worker''s cache_graphs job.';
revoke all on function private.semantic_cache_scope_graph_changes() from public;

-- Whether a scope's own graph exists and can be used (a concurrent build in progress or failed is not valid).
create function private.cache_scope_has_graph(p_scope_key bigint, p_dims integer) returns boolean
language sql stable parallel safe as $$
  select coalesce((select i.indisvalid
                   from pg_catalog.pg_class c
                   join pg_catalog.pg_index i on i.indexrelid = c.oid
                   where c.relname = private.cache_scope_graph_name(p_scope_key, p_dims)
                     and c.relnamespace = 'public'::regnamespace), false)
$$;
comment on function private.cache_scope_has_graph(bigint, integer) is
  'True when the semantic cache scope has a valid graph of its own for the dimension.';

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
  own_graph boolean := false;
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
    own_graph := private.cache_scope_has_graph(scope, dims);
    if not own_graph then
      select c.reltuples into partition_rows from pg_catalog.pg_class c where c.oid = entries;
    end if;
  end if;
  -- The statements name the scope's partition itself (the scope key stays a literal in them): a plan
  -- over a parameter would open and lock every partition on every lookup, and planning over the
  -- partitioned table costs twice planning over the one partition. With the scope key a literal, the
  -- planner also sees that the scope's own graph (a partial index on it) applies.
  if scope_size <= 2000 or (not own_graph and scope_size * 3 < partition_rows) then
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
  -- One pass of the graph gathers hnsw.ef_search rows, of which only the scope's are kept; when the pass
  -- keeps fewer than the walk's limit, the iterative scan searches again, at the cost of a second whole
  -- pass. A scope's own graph holds only its rows; in the partition's graph the pass is sized for the
  -- scope's share, with three standard deviations of room for how many others' rows it happens to meet.
  wanted := greatest(p_ef_search, p_candidates);
  share := case when own_graph or partition_rows <= scope_size then 1 else scope_size / partition_rows end;
  perform set_config('hnsw.ef_search',
                     least(1000, ceil(wanted / share + 3 * sqrt(wanted * (1 - share)) / share))::integer::text, true);
  -- The walk filters by the scope key alone, which the scope's own graph is built on and whose statistics
  -- estimate the scope well; the scope's columns are checked on the rows walked (the key is a 64-bit hash
  -- of them). With every column in the walk, the planner multiplied their selectivities (correlated:
  -- organization, model, parameters), took a 6,036-entry scope for 493 rows and sorted them all by
  -- distance instead of walking: 43 ms against 1.5 ms.
  return query execute format($q$
    with walked as materialized (
      select c.id, c.embedding, c.org_id, c.model, c.params_hash, c.system_prompt_hash, c.context_hash,
             c.embedding_model
      from %3$s c
      where c.embedding_dims = %1$s and c.scope_key = %2$s and c.expires_at > now()
      order by (c.embedding::extensions.halfvec(%1$s)) operator(extensions.<=>) $1::extensions.halfvec(%1$s)
      limit $9)
    select w.id, extensions.cosine_distance(w.embedding, $1)
    from walked w
    where w.org_id = $2 and w.model = $3 and w.params_hash = $4 and w.system_prompt_hash = $5
      and w.context_hash = $6 and w.embedding_model = $7
    order by 2 limit $8$q$, dims, scope, entries)
    using p_embedding, p_org_id, p_model, p_params_hash, p_system_prompt_hash, p_context_hash,
          p_embedding_model, p_candidates, wanted;
end
$$;
comment on function private.cache_nearest(uuid, text, text, text, text, extensions.vector, text, integer, integer) is
  'The nearest unexpired entries of one semantic cache scope by cosine distance: exact for scopes up to 2,000 '
  'entries, else the HNSW graph of the scope''s own (when the worker has built one) gathering p_ef_search rows, '
  'else the graph of the scope''s partition in one pass sized for the scope''s share of it (exact under a '
  'third), re-ranked exactly.';
