-- Every timestamp ingest accepts (back to the retention period) has a day partition of its own, so no
-- accepted event lands in the default partition: partitions are made back to the retention period,
-- and maintenance keeps them there (pg_partman itself only premakes ahead). A row that reaches the
-- default partition anyway (a retention setting raised, a clock set back, a row written by hand) is
-- moved into a day partition by maintenance. pg_partman's own mover (partition_data_time) cannot move
-- it: usage_records.id is an identity GENERATED ALWAYS, which its INSERT does not override, so it
-- failed on every run once one such row existed.
--
-- No `set search_path` clause on these functions, like private.usage_maintenance: pg_partman saves
-- and restores the search_path with a session-level set_config, which would leak an empty path into
-- the caller's session. Every name is qualified and none is security definer. Partitions are cut at
-- UTC midnight, as pg_partman cut the first ones on a server running in UTC (Supabase's setting).

-- ---------------------------------------------------------------- day partitions back to retention
create function private.make_usage_partitions() returns integer
language plpgsql volatile set timezone = 'UTC' as $$
declare
  missing timestamptz[];
begin
  if (select l.kind from private.usage_layout l) is distinct from 'partman' then
    return 0;
  end if;
  select coalesce(array_agg(d order by d), '{}') into missing
  from pg_catalog.generate_series(
         date_trunc('day', now() - (select l.retention from private.usage_layout l)),
         date_trunc('day', now()), interval '1 day') as d
  where pg_catalog.to_regclass(format('public.%I', 'usage_records_p' || to_char(d,
          (select c.datetime_string from partman.part_config c where c.parent_table = 'public.usage_records'))))
        is null;
  if cardinality(missing) > 0 then
    perform partman.create_partition_time('public.usage_records', missing);
  end if;
  return cardinality(missing);
end
$$;
comment on function private.make_usage_partitions() is
  'Create the missing day partitions of usage_records from the retention period back to today; returns '
  'how many. Cheap when none is missing (one catalog lookup per day).';
revoke all on function private.make_usage_partitions() from public;

-- ---------------------------------------------------------------- rows stranded in the default partition
create function private.place_default_usage_rows(max_days integer default 31) returns bigint
language plpgsql volatile set timezone = 'UTC' as $$
declare
  day timestamptz;
  n bigint;
  moved bigint := 0;
  -- Generated columns are computed again on the way in; every other column is carried over as it was.
  stored_columns text := (
    select string_agg(format('%I', a.attname), ', ' order by a.attnum) from pg_catalog.pg_attribute a
     where a.attrelid = 'public.usage_records'::regclass and a.attnum > 0 and not a.attisdropped
       and a.attgenerated = '');
begin
  if (select l.kind from private.usage_layout l) is distinct from 'partman' then
    return 0;
  end if;
  if pg_catalog.to_regclass('pg_temp.usage_rows_to_place') is null then
    create temp table usage_rows_to_place (like public.usage_records) on commit drop;
  end if;
  for day in
    select distinct date_trunc('day', d.occurred_at) from public.usage_records_default d order by 1 limit max_days
  loop
    -- Out through the parent and back in through it: the rollups' capture triggers see a delete and an
    -- insert of the same rows, so the rollups end as they were. The ids are kept.
    with taken as (
      delete from public.usage_records u
       where u.tableoid = 'public.usage_records_default'::regclass
         and u.occurred_at >= day and u.occurred_at < day + interval '1 day'
      returning u.*
    )
    insert into pg_temp.usage_rows_to_place select * from taken;
    get diagnostics n = row_count;
    -- The default partition no longer holds rows of that day, so its partition can be created.
    perform partman.create_partition_time('public.usage_records', array[day]);
    execute format('insert into public.usage_records (%1$s) overriding system value '
                   'select %1$s from pg_temp.usage_rows_to_place', stored_columns);
    delete from pg_temp.usage_rows_to_place;
    moved := moved + n;
  end loop;
  return moved;
end
$$;
comment on function private.place_default_usage_rows(integer) is
  'Move rows of the default usage partition into day partitions (created as needed), at most max_days '
  'days per call, keeping their ids and leaving the rollups unchanged; returns how many rows moved.';
revoke all on function private.place_default_usage_rows(integer) from public;

-- ---------------------------------------------------------------- the hourly upkeep
create or replace function private.usage_maintenance() returns text
language plpgsql volatile as $$
declare
  moved bigint := 0;
  made integer := 0;
begin
  if (select kind from private.usage_layout) = 'partman' then
    -- Stranded rows first: pg_partman cannot create a partition while the default one holds its rows.
    moved := private.place_default_usage_rows();
    perform partman.run_maintenance('public.usage_records');
    made := private.make_usage_partitions();
    delete from private.usage_request_ids
     where occurred_at < now() - (select retention from private.usage_layout);
  end if;
  return format('usage maintenance done, %s backfilled rows moved, %s partitions made', moved, made);
end
$$;
comment on function private.usage_maintenance() is
  'Partition upkeep for usage_records: place default-partition rows, premake, retention, day partitions '
  'back to retention, old claims.';

select private.place_default_usage_rows(1000);
select private.make_usage_partitions();
