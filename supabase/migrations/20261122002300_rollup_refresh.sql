-- Rollup refresh: move the watermark forward, fold pending deltas into the buckets, broadcast usage per
-- minute. Runs every minute from pg_cron where it exists, otherwise from the worker (private.periodic_jobs).

-- Fold the raw rows of [raw_from, raw_to) and every committed delta into the hourly and daily buckets
-- (and the end-user ones), one statement each: `delete ... returning` claims exactly the deltas this
-- transaction sees, and the raw range is aggregated straight into the same upsert.
create function private.fold_usage_deltas(raw_from timestamptz, raw_to timestamptz) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  folded bigint;
  end_user_folded bigint;
  t0 timestamptz := clock_timestamp();
  t1 timestamptz;
  t2 timestamptz;
  raw_source constant text := 'select * from public.usage_records where occurred_at >= $1 and occurred_at < $2';
begin
  execute format($fold$
  with d as (
    delete from private.usage_rollup_deltas returning *
  ), raw as (
    %s
  ), parts as (
    select * from d union all select * from raw
  ), hourly as (
    select bucket, org_id, team, project, provider, model, feature, api_key_id, status, sum(requests) as requests,
           sum(errors) as errors, sum(timeouts) as timeouts, sum(rate_limited) as rate_limited, sum(retries) as retries,
           sum(cache_hits) as cache_hits, sum(unpriced) as unpriced, sum(input_tokens) as input_tokens,
           sum(output_tokens) as output_tokens, sum(cached_tokens) as cached_tokens,
           sum(cache_write_tokens) as cache_write_tokens, sum(reasoning_tokens) as reasoning_tokens,
           sum(cost_usd) as cost_usd, sum(latency_count) as latency_count, sum(latency_sum_ms) as latency_sum_ms,
           analytics.merge_latency(latency_histogram) as latency_histogram
    from parts
    group by bucket, org_id, team, project, provider, model, feature, api_key_id, status
  ), daily as (
    select date_trunc('day', bucket, 'UTC') as bucket, org_id, team, project, provider, model, feature, api_key_id,
           status, sum(requests) as requests, sum(errors) as errors, sum(timeouts) as timeouts,
           sum(rate_limited) as rate_limited, sum(retries) as retries, sum(cache_hits) as cache_hits,
           sum(unpriced) as unpriced, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
           sum(cached_tokens) as cached_tokens, sum(cache_write_tokens) as cache_write_tokens,
           sum(reasoning_tokens) as reasoning_tokens, sum(cost_usd) as cost_usd,
           sum(latency_count) as latency_count, sum(latency_sum_ms) as latency_sum_ms,
           analytics.merge_latency(latency_histogram) as latency_histogram
    from hourly
    group by 1, org_id, team, project, provider, model, feature, api_key_id, status
  ), put_hourly as (
    insert into private.usage_rollup_hourly as t select * from hourly
    on conflict on constraint one_row_per_hour_and_dimensions do update set
      requests = t.requests + excluded.requests, errors = t.errors + excluded.errors,
      timeouts = t.timeouts + excluded.timeouts, rate_limited = t.rate_limited + excluded.rate_limited,
      retries = t.retries + excluded.retries, cache_hits = t.cache_hits + excluded.cache_hits,
      unpriced = t.unpriced + excluded.unpriced, input_tokens = t.input_tokens + excluded.input_tokens,
      output_tokens = t.output_tokens + excluded.output_tokens,
      cached_tokens = t.cached_tokens + excluded.cached_tokens,
      cache_write_tokens = t.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens, cost_usd = t.cost_usd + excluded.cost_usd,
      latency_count = t.latency_count + excluded.latency_count,
      latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
      latency_histogram = private.histogram_add(t.latency_histogram, excluded.latency_histogram)
    returning 1
  ), put_daily as (
    insert into private.usage_rollup_daily as t select * from daily
    on conflict on constraint one_row_per_day_and_dimensions do update set
      requests = t.requests + excluded.requests, errors = t.errors + excluded.errors,
      timeouts = t.timeouts + excluded.timeouts, rate_limited = t.rate_limited + excluded.rate_limited,
      retries = t.retries + excluded.retries, cache_hits = t.cache_hits + excluded.cache_hits,
      unpriced = t.unpriced + excluded.unpriced, input_tokens = t.input_tokens + excluded.input_tokens,
      output_tokens = t.output_tokens + excluded.output_tokens,
      cached_tokens = t.cached_tokens + excluded.cached_tokens,
      cache_write_tokens = t.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = t.reasoning_tokens + excluded.reasoning_tokens, cost_usd = t.cost_usd + excluded.cost_usd,
      latency_count = t.latency_count + excluded.latency_count,
      latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
      latency_histogram = private.histogram_add(t.latency_histogram, excluded.latency_histogram)
    returning 1
  )
  -- Data-modifying CTEs run to completion whether read or not; put_daily needs no mention here.
  select count(*) from put_hourly
  $fold$, private.usage_rollup_select(raw_source, 1))
  into folded using raw_from, raw_to;
  t1 := clock_timestamp();

  execute format($fold$
  with d as (
    delete from private.end_user_rollup_deltas returning *
  ), raw as (
    %s
  ), daily as (
    select bucket, org_id, end_user_id, sum(requests) as requests, sum(errors) as errors,
           sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
           sum(cached_tokens) as cached_tokens, sum(cost_usd) as cost_usd
    from (select * from d union all select * from raw) parts group by bucket, org_id, end_user_id
  ), monthly as (
    select date_trunc('month', bucket, 'UTC') as bucket, org_id, end_user_id, sum(requests) as requests,
           sum(errors) as errors, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
           sum(cached_tokens) as cached_tokens, sum(cost_usd) as cost_usd
    from daily group by 1, org_id, end_user_id
  ), put_daily as (
    insert into private.end_user_rollup_daily as t select * from daily
    on conflict on constraint one_row_per_end_user_day do update set
      requests = t.requests + excluded.requests, errors = t.errors + excluded.errors,
      input_tokens = t.input_tokens + excluded.input_tokens, output_tokens = t.output_tokens + excluded.output_tokens,
      cached_tokens = t.cached_tokens + excluded.cached_tokens, cost_usd = t.cost_usd + excluded.cost_usd
    returning 1
  ), put_monthly as (
    insert into private.end_user_rollup_monthly as t select * from monthly
    on conflict on constraint one_row_per_end_user_month do update set
      requests = t.requests + excluded.requests, errors = t.errors + excluded.errors,
      input_tokens = t.input_tokens + excluded.input_tokens, output_tokens = t.output_tokens + excluded.output_tokens,
      cached_tokens = t.cached_tokens + excluded.cached_tokens, cost_usd = t.cost_usd + excluded.cost_usd
    returning 1
  )
  select count(*) from put_daily
  $fold$, private.end_user_rollup_select(raw_source, 1))
  into end_user_folded using raw_from, raw_to;
  t2 := clock_timestamp();

  -- A bucket whose rows were all deleted sums to exactly zero; raw aggregates would not show it.
  delete from private.usage_rollup_hourly where requests = 0;
  delete from private.usage_rollup_daily where requests = 0;
  delete from private.end_user_rollup_daily where requests = 0;
  delete from private.end_user_rollup_monthly where requests = 0;
  return jsonb_build_object(
    'hourly_rows', folded, 'end_user_rows', end_user_folded,
    'usage_ms', round(extract(epoch from t1 - t0) * 1000, 1), 'end_user_ms', round(extract(epoch from t2 - t1) * 1000, 1),
    'cleanup_ms', round(extract(epoch from clock_timestamp() - t2) * 1000, 1));
end
$$;
comment on function private.fold_usage_deltas(timestamptz, timestamptz) is
  'Fold raw usage of [raw_from, raw_to) and all visible rollup deltas into the hourly/daily and end-user buckets; '
  'returns rows folded and milliseconds per part.';
revoke all on function private.fold_usage_deltas(timestamptz, timestamptz) from public;

-- One refresh step. Concurrency-safe: the exclusive advisory lock serializes refreshes and waits for
-- in-flight writers; a refresh that cannot get it within a second skips this run instead of queueing.
create function private.refresh_usage_rollups(up_to timestamptz default null,
                                              max_window interval default interval '6 hours')
returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  started timestamptz := clock_timestamp();
  saved_lock_timeout text := current_setting('lock_timeout');
  wm_old timestamptz;
  wm_new timestamptz;
  target timestamptz;
  first_raw timestamptz;
  folded jsonb;
  sent integer := 0;
  stats jsonb;
begin
  if (select l.kind from private.usage_layout l) = 'hypertable' then
    return jsonb_build_object('skipped', 'continuous aggregates are refreshed by their own policies');
  end if;
  -- Writers hold the lock shared until commit, so once we hold it every earlier write is visible to
  -- the statements below and no later write can see the old watermark. The short wait bounds how long
  -- ingest queues behind us when a long writer is in the way.
  perform set_config('lock_timeout', '1s', true);
  begin
    perform pg_advisory_xact_lock(private.rollup_lock_key());
  exception when lock_not_available then
    perform set_config('lock_timeout', saved_lock_timeout, true);
    return jsonb_build_object('skipped', 'a usage writer or another refresh holds the rollup lock');
  end;
  perform set_config('lock_timeout', saved_lock_timeout, true);

  select s.watermark into wm_old from private.usage_rollup_state s;
  target := coalesce(up_to, clock_timestamp());
  wm_new := target;
  if max_window is not null then
    if wm_old = '-infinity' then
      -- First refresh over existing rows: start the window at the oldest row.
      select min(u.occurred_at) into first_raw from public.usage_records u;
      wm_new := least(target, coalesce(first_raw, target) + max_window);
    else
      wm_new := least(target, wm_old + max_window);
    end if;
  end if;
  wm_new := greatest(wm_new, wm_old);

  -- JIT compiles for longer than these aggregations run, and their hash tables want more than the default.
  perform set_config('jit', 'off', true);
  perform set_config('work_mem', '64MB', true);
  folded := private.fold_usage_deltas(wm_old, wm_new);
  if wm_new > wm_old then
    -- Dashboards follow the last minutes live; a catch-up over old data broadcasts nothing stale.
    sent := private.broadcast_usage_minutes(greatest(wm_old, wm_new - interval '5 minutes'), wm_new);
  end if;

  stats := jsonb_build_object('from', wm_old, 'to', wm_new, 'caught_up', wm_new >= target,
                              'hourly_rows_folded', folded -> 'hourly_rows', 'fold', folded, 'broadcasts', sent,
                              'ms', round(extract(epoch from clock_timestamp() - started) * 1000, 1));
  update private.usage_rollup_state set watermark = wm_new, refreshed_at = clock_timestamp(), last_refresh = stats;
  return stats;
end
$$;
comment on function private.refresh_usage_rollups(timestamptz, interval) is
  'Materialize usage rows below min(up_to or now, watermark + max_window), fold late deltas, broadcast usage '
  'per minute. Safe to run concurrently (advisory lock); returns what it did, or why it skipped.';
revoke all on function private.refresh_usage_rollups(timestamptz, interval) from public;
grant execute on function private.refresh_usage_rollups(timestamptz, interval) to service_role;

-- ---------------------------------------------------------------- schedule
-- Every minute: pg_cron where present, else the worker. Not on the Timescale path (policies refresh).
insert into private.periodic_jobs (name, schedule, command, description)
select 'tokentra-usage-rollups', '* * * * *', 'select private.refresh_usage_rollups()',
       'Usage rollups: materialize up to now, fold late events, broadcast usage per minute.'
where (select kind from private.usage_layout) = 'partman';
select private.schedule_periodic_jobs();
