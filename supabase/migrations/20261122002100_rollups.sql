-- Usage rollups: hourly and daily buckets by organization, team, project, provider, model, feature,
-- API key and status, and daily/monthly buckets by end user, kept the way Timescale keeps continuous
-- aggregates but portable to every Postgres we run on (Supabase has no continuous aggregates).
--
-- How it stays exact and fresh:
--   * Raw rows older than the watermark are materialized; the read views (20261122002500) add the raw
--     rows at or past it, so an event counts the moment it is stored.
--   * A write that lands below the watermark (late event, backfill, re-pricing update, delete) is caught
--     by statement-level triggers with transition tables and logged as an aggregated, signed delta in
--     the same transaction. Every metric is a sum (histograms included), so folding a delta into its
--     bucket is exact and costs as much as the late rows, not as much as the bucket.
--   * The refresh (20261122002300) moves the watermark and folds deltas under an advisory lock that
--     every writer takes in shared mode, so no write can slip between "not late yet" and "already
--     materialized".
-- Where timescaledb runs with the Timescale license the same buckets are continuous aggregates with
-- refresh policies instead (bottom of this file). That branch cannot run on the Apache edition we
-- test on, so it is untested here.

-- ---------------------------------------------------------------- state
create table private.usage_rollup_state (
  singleton boolean primary key default true constraint only_one_row check (singleton),
  watermark timestamptz not null default '-infinity',
  refreshed_at timestamptz,
  last_refresh jsonb
);
comment on table private.usage_rollup_state is
  'Rows with occurred_at below the watermark are in the rollups; the rest are read raw.';
comment on column private.usage_rollup_state.last_refresh is 'What the last refresh did, for operators.';
insert into private.usage_rollup_state default values;
alter table private.usage_rollup_state enable row level security;
-- The watermark is no secret: every reader of the rollup views needs it to find the raw tail.
create policy "signed-in users read the rollup watermark" on private.usage_rollup_state
  for select to authenticated using (true);
grant select on private.usage_rollup_state to authenticated;

-- Which rollup machinery runs here, for code that runs as a signed-in user (usage_layout is private).
create function private.rollups_are_continuous_aggregates() returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((select l.kind = 'hypertable' from private.usage_layout l), false)
$$;
comment on function private.rollups_are_continuous_aggregates() is
  'True where the rollups are Timescale continuous aggregates (licensed timescaledb), false where portable.';
revoke all on function private.rollups_are_continuous_aggregates() from public;
grant execute on function private.rollups_are_continuous_aggregates() to authenticated, service_role;

-- The advisory lock key shared by writers (shared mode) and the refresh (exclusive mode).
create function private.rollup_lock_key() returns bigint
language sql immutable parallel safe set search_path = '' as $$
  select 7305746281050010001::bigint
$$;
comment on function private.rollup_lock_key() is
  'Advisory lock: usage writers hold it shared, the rollup refresh exclusive, so the watermark never races a write.';

-- ---------------------------------------------------------------- bucket tables
-- One column list for the hourly and daily rollups and the pending deltas (hour grain), so the three
-- can never drift apart. The unique key treats null dimensions as equal so upserts find their row, and
-- it carries every sum but the histogram (INCLUDE): a breakdown is then an index-only scan of one
-- organization's range, a few hundred pages, instead of a heap page per bucket row.
do $$
declare
  columns constant text := $cols$
    bucket timestamptz not null,
    org_id uuid not null references public.organizations (id) on delete cascade,
    team text,
    project text,
    provider text not null,
    model text not null,
    feature text,
    api_key_id uuid,
    status text not null,
    requests bigint not null default 0,
    errors bigint not null default 0,
    timeouts bigint not null default 0,
    rate_limited bigint not null default 0,
    retries bigint not null default 0,
    cache_hits bigint not null default 0,
    unpriced bigint not null default 0,
    input_tokens bigint not null default 0,
    output_tokens bigint not null default 0,
    cached_tokens bigint not null default 0,
    cache_write_tokens bigint not null default 0,
    reasoning_tokens bigint not null default 0,
    cost_usd numeric not null default 0,
    latency_count bigint not null default 0,
    latency_sum_ms bigint not null default 0,
    latency_histogram bigint[]
  $cols$;
  sums constant text := 'requests, errors, timeouts, rate_limited, retries, cache_hits, unpriced, input_tokens, '
                        'output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, latency_count, '
                        'latency_sum_ms';
begin
  execute format('create table private.usage_rollup_hourly (%s, constraint one_row_per_hour_and_dimensions '
                 'unique nulls not distinct (org_id, bucket, team, project, provider, model, feature, api_key_id, status) '
                 'include (%s))', columns, sums);
  execute format('create table private.usage_rollup_daily (%s, constraint one_row_per_day_and_dimensions '
                 'unique nulls not distinct (org_id, bucket, team, project, provider, model, feature, api_key_id, status) '
                 'include (%s))', columns, sums);
  execute format('create table private.usage_rollup_deltas (%s)', columns);
end
$$;
comment on table private.usage_rollup_hourly is 'Usage summed per UTC hour and dimensions, up to the watermark.';
comment on table private.usage_rollup_daily is 'Usage summed per UTC day and dimensions, up to the watermark.';
comment on table private.usage_rollup_deltas is
  'Signed, hour-grain sums of writes below the watermark (and of the raw range being materialized), '
  'waiting for the next refresh to fold them in. Read views add them, so late events count at once.';
comment on column private.usage_rollup_hourly.errors is 'Requests whose status is not success.';
comment on column private.usage_rollup_hourly.latency_histogram is
  'Counts per latency slot (see analytics.latency_slot); merge with analytics.merge_latency.';
create index usage_rollup_deltas_org_bucket_idx on private.usage_rollup_deltas (org_id, bucket);
-- The delta tables are queues (a row lives until the next refresh) read by every query: vacuum them
-- eagerly so reads do not wade through dead rows.
alter table private.usage_rollup_deltas set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                                             autovacuum_vacuum_cost_delay = 0);
-- A bucket whose rows were all deleted sums to zero everywhere; the refresh removes it via this index.
create index usage_rollup_hourly_empty_idx on private.usage_rollup_hourly (org_id) where requests = 0;
create index usage_rollup_daily_empty_idx on private.usage_rollup_daily (org_id) where requests = 0;

-- End users are too many to be a dimension of the buckets above; they get their own, narrower rollups.
do $$
declare
  columns constant text := $cols$
    bucket timestamptz not null,
    org_id uuid not null references public.organizations (id) on delete cascade,
    end_user_id text not null,
    requests bigint not null default 0,
    errors bigint not null default 0,
    input_tokens bigint not null default 0,
    output_tokens bigint not null default 0,
    cached_tokens bigint not null default 0,
    cost_usd numeric not null default 0
  $cols$;
begin
  execute format('create table private.end_user_rollup_daily (%s, constraint one_row_per_end_user_day '
                 'unique (org_id, bucket, end_user_id) include (requests, errors, cost_usd))', columns);
  execute format('create table private.end_user_rollup_monthly (%s, constraint one_row_per_end_user_month '
                 'unique (org_id, bucket, end_user_id) include (requests, errors, cost_usd))', columns);
  execute format('create table private.end_user_rollup_deltas (%s)', columns);
end
$$;
comment on table private.end_user_rollup_daily is 'Usage summed per UTC day and end user, up to the watermark.';
comment on table private.end_user_rollup_monthly is 'Usage summed per UTC month and end user, up to the watermark.';
comment on table private.end_user_rollup_deltas is 'Signed, day-grain end-user sums waiting for the next refresh.';
create index end_user_rollup_deltas_org_bucket_idx on private.end_user_rollup_deltas (org_id, bucket);
alter table private.end_user_rollup_deltas set (autovacuum_vacuum_scale_factor = 0,
                                                autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
create index end_user_rollup_daily_empty_idx on private.end_user_rollup_daily (org_id) where requests = 0;
create index end_user_rollup_monthly_empty_idx on private.end_user_rollup_monthly (org_id) where requests = 0;

-- ---------------------------------------------------------------- isolation
-- Same rule as the raw table: members whose role grants usage.read see their organizations' sums.
-- Rows are written only by triggers and the refresh (as the table owner), so no write policy exists.
do $$
declare
  t text;
begin
  foreach t in array array['usage_rollup_hourly', 'usage_rollup_daily', 'usage_rollup_deltas',
                           'end_user_rollup_daily', 'end_user_rollup_monthly', 'end_user_rollup_deltas'] loop
    execute format('alter table private.%I enable row level security', t);
    execute format('create policy "members with usage.read read their organizations'' rollups" on private.%I '
                   'for select to authenticated '
                   'using (org_id = any ((select private.org_ids_with(''usage.read''))::uuid[]))', t);
    execute format('grant select on private.%I to authenticated', t);
  end loop;
end
$$;

-- ---------------------------------------------------------------- aggregation SQL
-- The one definition of how usage rows become bucket sums, used by the capture trigger (source: a
-- transition table, sign -1 for removed rows) and by the refresh (source: the raw range being
-- materialized). `source` is SQL written in this schema's own functions, never a caller's: a query
-- yielding usage_records columns. The sign multiplies the sums rather than each row, which keeps the
-- per-row work to plain counts and sums (about three times faster over millions of rows), and buckets
-- are cut with date_bin from a UTC midnight, pure arithmetic where date_trunc(..., 'UTC') looks the
-- time zone up for every row.
create function private.usage_rollup_select(source text, sign integer) returns text
language sql immutable parallel safe set search_path = '' as $$
  select format($sql$
    select date_bin('1 hour', r.occurred_at, timestamptz '2000-01-01 00:00:00+00') as bucket, r.org_id, r.team,
           r.project, r.provider, r.model, r.feature, r.api_key_id, r.status,
           %2$s * count(*) as requests,
           %2$s * count(*) filter (where r.status <> 'success') as errors,
           %2$s * count(*) filter (where r.is_timeout) as timeouts,
           %2$s * count(*) filter (where r.is_rate_limited) as rate_limited,
           %2$s * coalesce(sum(r.retry_count), 0) as retries,
           %2$s * count(*) filter (where r.cache_hit) as cache_hits,
           %2$s * count(*) filter (where not r.priced) as unpriced,
           %2$s * sum(r.input_tokens) as input_tokens, %2$s * sum(r.output_tokens) as output_tokens,
           %2$s * sum(r.cached_tokens) as cached_tokens, %2$s * sum(r.cache_write_tokens) as cache_write_tokens,
           %2$s * sum(r.reasoning_tokens) as reasoning_tokens,
           %2$s * coalesce(sum(r.cost_usd), 0) as cost_usd,
           %2$s * count(r.latency_ms) as latency_count,
           %2$s * coalesce(sum(r.latency_ms), 0) as latency_sum_ms,
           private.histogram_of(analytics.latency_slot(r.latency_ms), %2$s) as latency_histogram
    from (%1$s) r
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9
  $sql$, source, sign)
$$;
comment on function private.usage_rollup_select(text, integer) is
  'SQL aggregating usage rows (source query) into hour-grain rollup rows, every sum multiplied by sign (+1/-1).';

create function private.end_user_rollup_select(source text, sign integer) returns text
language sql immutable parallel safe set search_path = '' as $$
  select format($sql$
    select date_bin('1 day', r.occurred_at, timestamptz '2000-01-01 00:00:00+00') as bucket, r.org_id, r.end_user_id,
           %2$s * count(*) as requests, %2$s * count(*) filter (where r.status <> 'success') as errors,
           %2$s * sum(r.input_tokens) as input_tokens, %2$s * sum(r.output_tokens) as output_tokens,
           %2$s * sum(r.cached_tokens) as cached_tokens, %2$s * coalesce(sum(r.cost_usd), 0) as cost_usd
    from (%1$s) r
    where r.end_user_id is not null
    group by 1, 2, 3
  $sql$, source, sign)
$$;
comment on function private.end_user_rollup_select(text, integer) is
  'SQL aggregating usage rows (source query) into day-grain end-user rollup rows, sums multiplied by sign.';
revoke all on function private.usage_rollup_select(text, integer), private.end_user_rollup_select(text, integer)
  from public;

-- ---------------------------------------------------------------- capture
-- Statement-level, with transition tables: one call per ingest batch, not per row. The common case (a
-- batch of fresh events, all at or past the watermark) costs one scan of the batch and nothing else.
create function private.capture_late_usage() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  wm timestamptz;
  late_new boolean := false;
  late_old boolean := false;
begin
  -- Held until commit: the refresh cannot move the watermark until this transaction's rows are
  -- visible to it, and a refresh that already moved it is visible to us (read committed re-reads).
  perform pg_advisory_xact_lock_shared(private.rollup_lock_key());
  select s.watermark into wm from private.usage_rollup_state s;
  if tg_op in ('INSERT', 'UPDATE') then
    late_new := exists (select 1 from new_rows r where r.occurred_at < wm);
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    late_old := exists (select 1 from old_rows r where r.occurred_at < wm);
  end if;
  if not (late_new or late_old) then
    return null;
  end if;
  -- A snapshot older than the statement could hold a stale watermark and lose the rows between the
  -- two; refuse rather than miscount.
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'usage rows older than the rollup watermark must be written at read committed isolation'
      using errcode = '25001';
  end if;
  if late_old then
    execute 'insert into private.usage_rollup_deltas '
            || private.usage_rollup_select('select * from old_rows where occurred_at < $1', -1) using wm;
    execute 'insert into private.end_user_rollup_deltas '
            || private.end_user_rollup_select('select * from old_rows where occurred_at < $1', -1) using wm;
  end if;
  if late_new then
    execute 'insert into private.usage_rollup_deltas '
            || private.usage_rollup_select('select * from new_rows where occurred_at < $1', 1) using wm;
    execute 'insert into private.end_user_rollup_deltas '
            || private.end_user_rollup_select('select * from new_rows where occurred_at < $1', 1) using wm;
  end if;
  return null;
end
$$;
comment on function private.capture_late_usage() is
  'Trigger: log signed deltas for usage rows written below the rollup watermark (late, backfilled, '
  're-priced or deleted rows).';

-- TRUNCATE leaves no rows to subtract: start the rollups over.
create function private.forget_truncated_usage() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  perform pg_advisory_xact_lock(private.rollup_lock_key());
  delete from private.usage_rollup_hourly;
  delete from private.usage_rollup_daily;
  delete from private.usage_rollup_deltas;
  delete from private.end_user_rollup_daily;
  delete from private.end_user_rollup_monthly;
  delete from private.end_user_rollup_deltas;
  update private.usage_rollup_state set watermark = '-infinity';
  return null;
end
$$;
comment on function private.forget_truncated_usage() is 'Trigger: empty the rollups when usage_records is truncated.';

-- ---------------------------------------------------------------- layout
-- Which machinery runs is detected, like the usage table's layout (20261122000600).
do $$
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    -- Timescale-licensed: continuous aggregates materialize, track invalidations and refresh by policy;
    -- real-time aggregation (materialized_only = false) adds the raw tail past their watermark. The
    -- read views use these instead of the tables above (20261122002500). Untestable on the Apache
    -- edition (creating them fails with "functionality not supported under the current apache license").
    execute $v$
      create materialized view private.usage_rollup_hourly_cagg
      with (timescaledb.continuous, timescaledb.materialized_only = false) as
      select extensions.time_bucket(interval '1 hour', occurred_at) as bucket, org_id, team, project, provider,
             model, feature, api_key_id, status, count(*) as requests,
             count(*) filter (where status <> 'success') as errors, count(*) filter (where is_timeout) as timeouts,
             count(*) filter (where is_rate_limited) as rate_limited, sum(retry_count) as retries,
             count(*) filter (where cache_hit) as cache_hits, count(*) filter (where not priced) as unpriced,
             sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
             sum(cached_tokens) as cached_tokens, sum(cache_write_tokens) as cache_write_tokens,
             sum(reasoning_tokens) as reasoning_tokens, coalesce(sum(cost_usd), 0) as cost_usd,
             count(latency_ms) as latency_count, coalesce(sum(latency_ms), 0) as latency_sum_ms,
             analytics.latency_histogram(latency_ms) as latency_histogram
      from public.usage_records
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9
      with no data $v$;
    -- Daily buckets on top of the hourly ones (hierarchical continuous aggregate).
    execute $v$
      create materialized view private.usage_rollup_daily_cagg
      with (timescaledb.continuous, timescaledb.materialized_only = false) as
      select extensions.time_bucket(interval '1 day', bucket) as bucket, org_id, team, project, provider, model,
             feature, api_key_id, status, sum(requests) as requests, sum(errors) as errors, sum(timeouts) as timeouts,
             sum(rate_limited) as rate_limited, sum(retries) as retries, sum(cache_hits) as cache_hits,
             sum(unpriced) as unpriced, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
             sum(cached_tokens) as cached_tokens, sum(cache_write_tokens) as cache_write_tokens,
             sum(reasoning_tokens) as reasoning_tokens, sum(cost_usd) as cost_usd,
             sum(latency_count) as latency_count, sum(latency_sum_ms) as latency_sum_ms,
             analytics.merge_latency(latency_histogram) as latency_histogram
      from private.usage_rollup_hourly_cagg
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9
      with no data $v$;
    execute $v$
      create materialized view private.end_user_rollup_daily_cagg
      with (timescaledb.continuous, timescaledb.materialized_only = false) as
      select extensions.time_bucket(interval '1 day', occurred_at) as bucket, org_id, end_user_id,
             count(*) as requests, count(*) filter (where status <> 'success') as errors,
             sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
             sum(cached_tokens) as cached_tokens, coalesce(sum(cost_usd), 0) as cost_usd
      from public.usage_records where end_user_id is not null
      group by 1, 2, 3
      with no data $v$;
    perform extensions.add_continuous_aggregate_policy('private.usage_rollup_hourly_cagg',
      start_offset => null, end_offset => interval '1 minute', schedule_interval => interval '1 minute');
    perform extensions.add_continuous_aggregate_policy('private.usage_rollup_daily_cagg',
      start_offset => null, end_offset => interval '1 hour', schedule_interval => interval '1 minute');
    perform extensions.add_continuous_aggregate_policy('private.end_user_rollup_daily_cagg',
      start_offset => null, end_offset => interval '1 minute', schedule_interval => interval '1 minute');
    -- Continuous aggregates cannot carry RLS: nobody but the owner reads them directly; the read
    -- views go through private.usage_rollup_rows, which filters by the caller's organizations.
    revoke all on private.usage_rollup_hourly_cagg, private.usage_rollup_daily_cagg,
      private.end_user_rollup_daily_cagg from public, authenticated;
  else
    -- Transition tables allow one event per trigger, hence three triggers on one function.
    create trigger capture_late_inserts after insert on public.usage_records
      referencing new table as new_rows for each statement execute function private.capture_late_usage();
    create trigger capture_late_updates after update on public.usage_records
      referencing old table as old_rows new table as new_rows
      for each statement execute function private.capture_late_usage();
    create trigger capture_late_deletes after delete on public.usage_records
      referencing old table as old_rows for each statement execute function private.capture_late_usage();
    create trigger forget_truncated_usage after truncate on public.usage_records
      for each statement execute function private.forget_truncated_usage();
  end if;
end
$$;
