-- A lookup chooses between an exact search of its scope and a walk of its partition's HNSW graph. A walk
-- gathers its ef_search rows of the scope among every scope's rows of the partition: when the scope is a
-- small share of the partition, the walk reads mostly others' rows and costs several times an exact search
-- of the scope (measured at 1,000,000 entries: a 6,036-entry scope in an 81,686-row partition walked in
-- 30 ms against 8.5 ms exact; 12,071 in 81,686, 75 against 21 ms), while a scope that is most of its
-- partition walks in 2 to 6 ms whatever its size, and its exact search costs about 1.7 microseconds a row.
-- So: exact search up to 2,000 entries as before, and also when the scope is under a third of its
-- partition.
--
-- The scope's size was counted at each lookup (index-only, up to 2,001 entries, about 0.2 microseconds a
-- row): telling a scope's share needs its size past that, which counting would make the cost of every large
-- scope's lookup. The cache keeps each scope's entry count itself instead, per statement (transition
-- tables: one upsert per scope a statement touches, not per row), and the partition's size is its
-- pg_class.reltuples (kept by autovacuum; unknown until first analysed, and then the share is not used).

create table private.semantic_cache_scope_sizes (
  scope_key bigint not null,
  org_id uuid not null references public.organizations (id) on delete cascade,
  embedding_dims integer not null,
  entries bigint not null,
  primary key (scope_key, org_id, embedding_dims)
);
comment on table private.semantic_cache_scope_sizes is
  'Entries per semantic cache scope and embedding dimension, kept by statement triggers on the entries; '
  'read by private.cache_nearest to choose an exact search or a graph walk.';
alter table private.semantic_cache_scope_sizes enable row level security;

create function private.count_cache_scope_sizes() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  -- Rows counted per scope, in key order so that concurrent statements lock the counters in one order.
  if tg_op in ('INSERT', 'UPDATE') then
    insert into private.semantic_cache_scope_sizes as s (scope_key, org_id, embedding_dims, entries)
    select n.scope_key, n.org_id, n.embedding_dims, count(*)
    from new_rows n where n.embedding_dims is not null
    group by 1, 2, 3 order by 1, 2, 3
    on conflict (scope_key, org_id, embedding_dims) do update set entries = s.entries + excluded.entries;
  end if;
  if tg_op in ('DELETE', 'UPDATE') then
    update private.semantic_cache_scope_sizes s set entries = s.entries - o.gone
    from (select o.scope_key, o.org_id, o.embedding_dims, count(*) gone
          from old_rows o where o.embedding_dims is not null
          group by 1, 2, 3 order by 1, 2, 3) o
    where s.scope_key = o.scope_key and s.org_id = o.org_id and s.embedding_dims = o.embedding_dims;
  end if;
  return null;
end
$$;
comment on function private.count_cache_scope_sizes() is
  'Keeps private.semantic_cache_scope_sizes equal to the entries per scope and dimension.';

create trigger count_scope_sizes_on_insert after insert on public.semantic_cache
  referencing new table as new_rows for each statement execute function private.count_cache_scope_sizes();
create trigger count_scope_sizes_on_update after update on public.semantic_cache
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.count_cache_scope_sizes();
create trigger count_scope_sizes_on_delete after delete on public.semantic_cache
  referencing old table as old_rows for each statement execute function private.count_cache_scope_sizes();

create function private.forget_cache_scope_sizes() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from private.semantic_cache_scope_sizes;
  return null;
end
$$;
create trigger forget_scope_sizes_on_truncate after truncate on public.semantic_cache
  for each statement execute function private.forget_cache_scope_sizes();

insert into private.semantic_cache_scope_sizes (scope_key, org_id, embedding_dims, entries)
select c.scope_key, c.org_id, c.embedding_dims, count(*)
from public.semantic_cache c where c.embedding_dims is not null
group by 1, 2, 3;

-- The partition a scope key hashes to, as Postgres's hash partitioning computes it for one bigint column
-- (the int8 extended hash with the partitioning seed, combined with a zero hash, modulo 128).
create function private.cache_scope_partition(p_scope_key bigint) returns regclass
language sql stable strict parallel safe set search_path = '' as $$
  select pg_catalog.to_regclass('public.semantic_cache_p' || pg_catalog.lpad(
    (((pg_catalog.hashint8extended(p_scope_key, 8816678312871386365) & 127) + 99) & 127)::text, 3, '0'))
$$;
comment on function private.cache_scope_partition(bigint) is
  'The partition of public.semantic_cache holding a scope key''s entries.';
revoke all on function private.cache_scope_partition(bigint) from public;
revoke all on function private.count_cache_scope_sizes() from public;
revoke all on function private.forget_cache_scope_sizes() from public;

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
        select 1 from public.semantic_cache c
        where c.scope_key = %s and c.org_id = $6 and c.model = $1 and c.params_hash = $2 and c.embedding_dims = $3
          and c.system_prompt_hash = $4 and c.context_hash = $5
        limit 2001) s$q$, scope)
      into scope_size using p_model, p_params_hash, dims, p_system_prompt_hash, p_context_hash, p_org_id;
  end if;
  if scope_size > 2000 then
    select c.reltuples into partition_rows from pg_catalog.pg_class c
    where c.oid = private.cache_scope_partition(scope);
  end if;
  -- The scope key is a literal in the statements, so each is planned for its one partition: a plan
  -- over a parameter would open and lock every partition on every lookup.
  if scope_size <= 2000 or scope_size * 3 < partition_rows then
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
  'entries or under a third of their partition, else the HNSW graph of the scope''s partition gathering '
  'p_ef_search rows, re-ranked exactly.';
