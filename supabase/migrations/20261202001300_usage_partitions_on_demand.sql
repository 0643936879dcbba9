-- Day partitions for backfilled events on demand, not premade back to the retention period.
--
-- 20261202001100 premade every day partition back to retention (about 410). Queries whose time bounds
-- are not constants at plan time (now(), parameters of generic plans) lock every partition and its three
-- indexes: a budget reservation took some 2,500 locks per call, and concurrent ones exhausted the shared
-- lock table ("out of shared memory"). So the premade past is dropped again where empty, and ingest asks
-- for the partitions of the days a batch carries before it writes (private.ensure_usage_partitions:
-- one catalog lookup per distinct day when they exist, which is the hot path). A row that still reaches
-- the default partition is moved out by maintenance (private.place_default_usage_rows).
--
-- No `set search_path` clause, as for the other functions calling pg_partman (see 20261202001100).

create function private.ensure_usage_partitions(days timestamptz[]) returns integer
language plpgsql volatile set timezone = 'UTC' as $$
declare
  missing timestamptz[];
begin
  if (select l.kind from private.usage_layout l) is distinct from 'partman' then
    return 0;
  end if;
  select coalesce(array_agg(distinct date_trunc('day', d)), '{}') into missing
  from unnest(days) as d
  where d is not null
    and pg_catalog.to_regclass(format('public.%I', 'usage_records_p' || to_char(date_trunc('day', d), 'YYYYMMDD')))
        is null;
  if cardinality(missing) = 0 then
    return 0;
  end if;
  -- One creator at a time (a concurrent batch of the same day waits, then finds the partition made).
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tokentra.usage-partitions'));
  -- A day whose rows wait in the default partition cannot get its partition while they are there.
  perform private.place_default_usage_rows();
  perform partman.create_partition_time('public.usage_records', missing);
  return cardinality(missing);
end
$$;
comment on function private.ensure_usage_partitions(timestamptz[]) is
  'Create the missing day partitions of usage_records for these times (ingest calls it before writing a '
  'batch); returns how many were made. Cheap when they exist.';
revoke all on function private.ensure_usage_partitions(timestamptz[]) from public;
grant execute on function private.ensure_usage_partitions(timestamptz[]) to service_role;

create or replace function private.usage_maintenance() returns text
language plpgsql volatile as $$
declare
  moved bigint := 0;
begin
  if (select kind from private.usage_layout) = 'partman' then
    -- Stranded rows first: pg_partman cannot create a partition while the default one holds its rows.
    moved := private.place_default_usage_rows();
    perform partman.run_maintenance('public.usage_records');
    delete from private.usage_request_ids
     where occurred_at < now() - (select retention from private.usage_layout);
  end if;
  return format('usage maintenance done, %s backfilled rows moved', moved);
end
$$;
comment on function private.usage_maintenance() is
  'Partition upkeep for usage_records: place default-partition rows, premake, retention, old claims.';

drop function private.make_usage_partitions();

-- The empty premade past goes; partitions holding rows stay.
do $$
declare
  part record;
  empty boolean;
begin
  if (select kind from private.usage_layout) is distinct from 'partman' then
    return;
  end if;
  for part in
    select c.relname from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'public.usage_records'::regclass and c.relname ~ '^usage_records_p[0-9]{8}$'
       and to_date(substr(c.relname, 16), 'YYYYMMDD') < (now() at time zone 'UTC')::date - 36
  loop
    execute format('select not exists (select 1 from public.%I)', part.relname) into empty;
    if empty then
      execute format('drop table public.%I', part.relname);
    end if;
  end loop;
end
$$;
