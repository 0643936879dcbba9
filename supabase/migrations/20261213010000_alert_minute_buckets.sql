-- Metric alert rules measure their window to the minute. The hourly rollups were their finest grain, so
-- the hour in progress counted whole: a 15-minute rule at HH:50 read fifty minutes. A spend-spike rule
-- with a 15-minute window then fired every hour on perfectly steady spend (fifty minutes of it against a
-- baseline of fifteen), and an error or latency burst in the last minutes was diluted by the quiet start
-- of the hour (error_rate and latency rules default to 15 minutes).
--
-- Per-minute sums of the last three hours, by organization and the dimensions a rule can filter on, are
-- kept the way the hourly rollups are: appended when the watermark moves (the rows it passes), plus
-- signed deltas for rows written below it (late events, re-pricing, deletes), so they stay exact. Raw rows
-- past the watermark are read as they are. A rule reads a few minute rows instead of the raw rows of its
-- window. Only the part of a window older than the minutes kept (windows over three hours) still reads
-- the hourly rollups in proportion. Where continuous aggregates run the rollups (Timescale-licensed),
-- nothing moves a watermark, so no minutes are kept and rules read the hourly buckets as before.

create table private.usage_minutes (
  bucket timestamptz not null,
  org_id uuid not null,
  provider text,
  model text,
  team text,
  project text,
  feature text,
  requests bigint not null,
  errors bigint not null,
  cost_usd numeric not null,
  latency_histogram bigint[]
);
comment on table private.usage_minutes is
  'Signed per-minute usage sums of the last three hours for metric alert rules; several rows may share a '
  'minute and dimensions (they add up). Covers rows below the rollup watermark from usage_minutes_state on.';
create index usage_minutes_org_bucket_idx on private.usage_minutes (org_id, bucket);
create index usage_minutes_bucket_idx on private.usage_minutes (bucket);
-- Read only by the alert evaluation, which runs as the owner: no policy, so no API role reads it.
alter table private.usage_minutes enable row level security;
revoke all on private.usage_minutes from public;

create table private.usage_minutes_state (
  singleton boolean primary key default true constraint only_one_row check (singleton),
  complete_since timestamptz not null
);
comment on table private.usage_minutes_state is
  'Every usage row with complete_since <= occurred_at < the rollup watermark is in usage_minutes.';
alter table private.usage_minutes_state enable row level security;
revoke all on private.usage_minutes_state from public;

-- How far back minutes are kept, minute-aligned (bucket edges are whole minutes from a UTC midnight).
create function private.usage_minutes_keep_from() returns timestamptz
language sql stable set search_path = '' as $$
  select date_bin('1 minute', now() - interval '3 hours', timestamptz '2000-01-01 00:00:00+00')
$$;
comment on function private.usage_minutes_keep_from() is 'Oldest minute usage_minutes keeps.';
revoke all on function private.usage_minutes_keep_from() from public;

-- The one definition of how usage rows become minute sums; like private.usage_rollup_select, source is
-- SQL written in this schema's own functions, never a caller's.
create function private.usage_minute_select(source text, sign integer) returns text
language sql immutable parallel safe set search_path = '' as $$
  select format($sql$
    select date_bin('1 minute', r.occurred_at, timestamptz '2000-01-01 00:00:00+00') as bucket, r.org_id,
           r.provider, r.model, r.team, r.project, r.feature,
           %2$s * count(*) as requests, %2$s * count(*) filter (where r.status <> 'success') as errors,
           %2$s * coalesce(sum(r.cost_usd), 0) as cost_usd,
           private.histogram_of(analytics.latency_slot(r.latency_ms), %2$s) as latency_histogram
    from (%1$s) r
    group by 1, 2, 3, 4, 5, 6, 7
  $sql$, source, sign)
$$;
comment on function private.usage_minute_select(text, integer) is
  'SQL aggregating usage rows (source query) into minute rows for alert rules, every sum multiplied by sign.';
revoke all on function private.usage_minute_select(text, integer) from public;

-- When the refresh moves the watermark, the rows it passes become minute sums and minutes past three hours
-- go; it runs inside the refresh, under the rollup lock the refresh holds exclusively. A watermark moved
-- back (the usage table truncated, private.forget_truncated_usage) starts the minutes over from it.
create function private.follow_usage_watermark() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  keep_from timestamptz := private.usage_minutes_keep_from();
begin
  if new.watermark < old.watermark then
    delete from private.usage_minutes;
    update private.usage_minutes_state set complete_since = new.watermark;
    return null;
  end if;
  execute 'insert into private.usage_minutes '
          || private.usage_minute_select('select * from public.usage_records where occurred_at >= $1 '
                                         'and occurred_at < $2', 1)
    using greatest(old.watermark, keep_from), new.watermark;
  delete from private.usage_minutes where bucket < keep_from;
  update private.usage_minutes_state set complete_since = greatest(complete_since, keep_from);
  return null;
end
$$;
comment on function private.follow_usage_watermark() is
  'Trigger: sum the usage rows a watermark move passes into usage_minutes and drop minutes past three hours.';
revoke all on function private.follow_usage_watermark() from public;

-- The capture trigger of 20261122002100, with the late rows' minute sums added (only rows the minutes
-- cover: older ones would never be read).
create or replace function private.capture_late_usage() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  wm timestamptz;
  minutes_from timestamptz;
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
  select m.complete_since into minutes_from from private.usage_minutes_state m;
  if late_old then
    execute 'insert into private.usage_rollup_deltas '
            || private.usage_rollup_select('select * from old_rows where occurred_at < $1', -1) using wm;
    execute 'insert into private.end_user_rollup_deltas '
            || private.end_user_rollup_select('select * from old_rows where occurred_at < $1', -1) using wm;
    execute 'insert into private.usage_minutes '
            || private.usage_minute_select('select * from old_rows where occurred_at < $1 and occurred_at >= $2', -1)
      using wm, minutes_from;
  end if;
  if late_new then
    execute 'insert into private.usage_rollup_deltas '
            || private.usage_rollup_select('select * from new_rows where occurred_at < $1', 1) using wm;
    execute 'insert into private.end_user_rollup_deltas '
            || private.end_user_rollup_select('select * from new_rows where occurred_at < $1', 1) using wm;
    execute 'insert into private.usage_minutes '
            || private.usage_minute_select('select * from new_rows where occurred_at < $1 and occurred_at >= $2', 1)
      using wm, minutes_from;
  end if;
  return null;
end
$$;

do $$
declare
  wm timestamptz;
  keep_from timestamptz := private.usage_minutes_keep_from();
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    -- Nothing moves the watermark here: the minutes never cover anything.
    insert into private.usage_minutes_state values (true, 'infinity');
    return;
  end if;
  -- The rows already below the watermark, summed with no writer in between.
  perform pg_advisory_xact_lock(private.rollup_lock_key());
  select s.watermark into wm from private.usage_rollup_state s;
  if wm > keep_from then
    execute 'insert into private.usage_minutes '
            || private.usage_minute_select('select * from public.usage_records where occurred_at >= $1 '
                                           'and occurred_at < $2', 1)
      using keep_from, wm;
  end if;
  insert into private.usage_minutes_state values (true, keep_from);
  create trigger follow_usage_watermark after update of watermark on private.usage_rollup_state
    for each row when (new.watermark is distinct from old.watermark)
    execute function private.follow_usage_watermark();
end
$$;

-- ---------------------------------------------------------------- the measure
-- Whether a usage row's dimensions pass a metric rule's filters (a plain SQL function, inlined).
create function private.alert_rule_matches(c jsonb, provider text, model text, team text, project text,
                                           feature text) returns boolean
language sql immutable parallel safe as $$
  select (c ->> 'provider' is null or provider = c ->> 'provider')
     and (c ->> 'model' is null or model = c ->> 'model')
     and (c ->> 'team' is null or team = c ->> 'team')
     and (c ->> 'project' is null or project = c ->> 'project')
     and (c ->> 'feature' is null or feature = c ->> 'feature')
$$;
comment on function private.alert_rule_matches(jsonb, text, text, text, text, text) is
  'True when a usage row''s dimensions pass a metric rule''s provider/model/team/project/feature filters.';
revoke all on function private.alert_rule_matches(jsonb, text, text, text, text, text) from public;

-- The window is [the start of the minute at - window_minutes falls in, at]. Minutes kept cover it from
-- exact_from on: minute sums below raw_from, raw rows from raw_from to at (the rows past the watermark,
-- and those of at's own minute, so that nothing after at counts). A part of the window older than the
-- minutes kept reads hourly buckets, a finished hour in proportion to the part covered; where no minutes
-- cover the window at all, the hour in progress counts whole, as before. The spend baseline (mean spend
-- per window over the baseline hours before the window) reads hourly buckets.
create or replace function private.alert_rule_measure(rule public.alert_rules, at timestamptz default now())
returns table (value numeric, baseline numeric, requests bigint)
language plpgsql stable rows 1 set search_path = '' set jit = off as $$
declare
  c jsonb := rule.condition;
  win interval := make_interval(secs => 60 * greatest(1, coalesce((c ->> 'window_minutes')::numeric, 60)));
  base_hours integer := coalesce((c ->> 'baseline_hours')::integer, 24);
  since timestamptz := date_bin('1 minute', at - win, timestamptz '2000-01-01 00:00:00+00');
  base_since timestamptz := since - make_interval(hours => base_hours);
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
  exact_from timestamptz := greatest(since, (select m.complete_since from private.usage_minutes_state m));
  raw_from timestamptz := greatest(exact_from, least(wm, date_bin('1 minute', at, timestamptz '2000-01-01 00:00:00+00')));
  covered boolean := exact_from <= at;
  hourly_to timestamptz := least(at, exact_from);
  hourly_from timestamptz := date_trunc('hour', case when rule.type = 'spend_spike' then base_since else since end, 'UTC');
  -- Covered, the hourly buckets serve the baseline and the part of the window before exact_from.
  hourly_before timestamptz := case when covered then exact_from else 'infinity' end;
  -- Nothing hourly counts for an error or latency rule whose window the minutes cover: skip reading it.
  hourly_needed boolean := not covered or rule.type = 'spend_spike' or since < exact_from;
begin
  return query
  with rows as (
    select v.cost_usd, v.errors, v.requests, v.latency_histogram,
           case when not covered and v.bucket + interval '1 hour' > at then 1
                else private.hour_share(v.bucket, since, hourly_to) end as w,
           case when v.bucket + interval '1 hour' > at then 0
                else private.hour_share(v.bucket, base_since, since) end as b
      from analytics.usage_hourly v
     where hourly_needed and v.org_id = rule.org_id and v.bucket >= hourly_from and v.bucket <= at
       and v.bucket < hourly_before
       and private.alert_rule_matches(c, v.provider, v.model, v.team, v.project, v.feature)
    union all
    select m.cost_usd, m.errors, m.requests, m.latency_histogram, 1, 0
      from private.usage_minutes m
     where covered and m.org_id = rule.org_id and m.bucket >= exact_from and m.bucket < raw_from
       and private.alert_rule_matches(c, m.provider, m.model, m.team, m.project, m.feature)
    union all
    select coalesce(sum(u.cost_usd), 0), count(*) filter (where u.status <> 'success'), count(*),
           analytics.latency_histogram(u.latency_ms), 1, 0
      from public.usage_records u
     where covered and u.org_id = rule.org_id and u.occurred_at >= raw_from and u.occurred_at <= at
       and private.alert_rule_matches(c, u.provider, u.model, u.team, u.project, u.feature)
  )
  select case rule.type
           when 'spend_spike' then round(coalesce(sum(r.cost_usd * r.w), 0), 6)
           when 'error_rate' then round(100.0 * coalesce(sum(r.errors * r.w), 0) / nullif(sum(r.requests * r.w), 0), 4)
           when 'latency' then analytics.latency_percentile(
                                 analytics.merge_latency(r.latency_histogram) filter (where r.w > 0),
                                 coalesce((c ->> 'percentile')::float8, 95) / 100)::numeric
         end,
         round(coalesce(sum(r.cost_usd * r.b), 0) / base_hours * (extract(epoch from win) / 3600), 6),
         round(coalesce(sum(r.requests * r.w), 0))::bigint
    from rows r;
end
$$;
comment on function private.alert_rule_measure(public.alert_rules, timestamptz) is
  'Current value of a spend_spike (USD in window), error_rate (% of requests) or latency (ms at percentile) rule '
  'over the window_minutes before at, to the minute (from the start of the minute the window begins in), with '
  'the spend baseline per window and the request count.';
