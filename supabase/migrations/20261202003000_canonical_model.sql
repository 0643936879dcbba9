-- Canonical model: one identity per model for grouping. Providers name a snapshot in the response
-- (gpt-4o-2024-08-06) while a failed call only knows the model requested (gpt-4o); grouping by the
-- name as sent splits one model in two and gives each half a wrong error rate. `usage_records.model`
-- keeps the name as sent; `canonical_model` beside it is the model the price resolves to (genai-prices'
-- match rules, or an organization's own price), and for names nothing prices, the name with its
-- provider prefix and snapshot date removed. Rollups, the analytics views and the query functions carry
-- it as a dimension; routing and reconciliation call private.canonical_model(provider, model, org).

-- ---------------------------------------------------------------- the definition
-- What a name nothing prices is grouped under: lower case, no vendor path (openai/gpt-4o,
-- accounts/x/models/y), no snapshot date (-2024-08-06, -20240806, @20240806) and no -latest. Fine-tune
-- ids (ft:gpt-4o-mini-2024-07-18:acme::x1) keep their date: it sits inside them, not at the end.
create function private.normalize_model_name(model text) returns text
language sql immutable strict parallel safe set search_path = '' as $$
  select regexp_replace(
           regexp_replace(
             regexp_replace(lower(btrim(model)), '^.*/', ''),
             '[-@](19|20)[0-9]{2}-?(0[1-9]|1[0-2])-?(0[1-9]|[12][0-9]|3[01])$', ''),
           '-latest$', '')
$$;
comment on function private.normalize_model_name(text) is
  'The canonical name of a model nothing prices: lower case, without vendor path, trailing snapshot date or -latest.';

-- The canonical model of a stored row, from what pricing resolved it to (price_model is
-- `<provider_id>/<model_id>`, or `org:<org id>/<name>` for an organization's own price) and the name as
-- sent. Immutable, so usage_records can keep it as a generated column: re-pricing, which rewrites
-- price_model, moves it too, and no writer can forget it.
create function private.canonical_model_of(price_model text, model text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
           when price_model is null then private.normalize_model_name(model)
           when price_model like 'org:%' then lower(substr(price_model, strpos(price_model, '/') + 1))
           -- genai-prices ids of gateway providers carry the vendor (openrouter's openai/gpt-4o)
           else lower(regexp_replace(price_model, '^.*/', ''))
         end
$$;
comment on function private.canonical_model_of(text, text) is
  'Canonical model of a usage row from its price_model (provider/model id as priced) and the model name as sent.';

-- The key routing, reconciliation and reports share: what a (provider, model) pair sent by a client is
-- grouped under, as ingest would store it now. `org` is for organizations' own prices (a later
-- migration teaches resolution about them); without it, genai-prices decides.
create function private.canonical_model(provider text, model text, org uuid default null) returns text
language sql stable parallel safe set search_path = '' as $$
  select private.canonical_model_of(
           (select r.provider_id || '/' || r.model_id
              from private.resolve_price(canonical_model.provider, canonical_model.model) r),
           canonical_model.model)
$$;
comment on function private.canonical_model(text, text, uuid) is
  'The canonical model of a (provider, model) pair as a client sends it: the model id its price resolves to, '
  'else the normalized name. The one grouping key of reports, detectors, routing and reconciliation.';

revoke all on function private.normalize_model_name(text), private.canonical_model_of(text, text),
  private.canonical_model(text, text, uuid) from public;
grant execute on function private.normalize_model_name(text), private.canonical_model_of(text, text),
  private.canonical_model(text, text, uuid) to authenticated, tokentra_analyst, service_role;

-- ---------------------------------------------------------------- usage rows
-- Generated and stored: computed as each row is written (no change to any writer) and as re-pricing
-- rewrites price_model. Adding it rewrites the table once, which is the backfill.
alter table public.usage_records
  add column canonical_model text generated always as (private.canonical_model_of(price_model, model)) stored;
comment on column public.usage_records.canonical_model is
  'The model this call is grouped under: the model id its price resolved to (genai-prices'' match rules or the '
  'organization''s own price), else the name without vendor prefix and snapshot date. model keeps the name as sent.';

-- ---------------------------------------------------------------- rollups
-- A dimension of every bucket. Appended as the tables' last column, and last in the aggregation SQL
-- too, so the positional inserts of the capture trigger and the refresh keep lining up.
do $$
declare
  t text;
begin
  foreach t in array array['usage_rollup_hourly', 'usage_rollup_daily', 'usage_rollup_deltas'] loop
    execute format('alter table private.%I add column canonical_model text', t);
    -- Existing buckets: names resolved as they resolve now, once per distinct pair.
    execute format($u$
      update private.%1$I r set canonical_model = m.canonical_model
        from (select distinct x.provider, x.model, private.canonical_model(x.provider, x.model) as canonical_model
                from private.%1$I x) m
       where m.provider = r.provider and m.model = r.model $u$, t);
    execute format('alter table private.%I alter column canonical_model set not null', t);
  end loop;
end
$$;

alter table private.usage_rollup_hourly drop constraint one_row_per_hour_and_dimensions,
  add constraint one_row_per_hour_and_dimensions
    unique nulls not distinct (org_id, bucket, team, project, provider, model, feature, api_key_id, status, canonical_model)
    include (requests, errors, timeouts, rate_limited, retries, cache_hits, unpriced, input_tokens, output_tokens,
             cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, latency_count, latency_sum_ms);
alter table private.usage_rollup_daily drop constraint one_row_per_day_and_dimensions,
  add constraint one_row_per_day_and_dimensions
    unique nulls not distinct (org_id, bucket, team, project, provider, model, feature, api_key_id, status, canonical_model)
    include (requests, errors, timeouts, rate_limited, retries, cache_hits, unpriced, input_tokens, output_tokens,
             cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, latency_count, latency_sum_ms);
comment on column private.usage_rollup_hourly.canonical_model is 'See public.usage_records.canonical_model.';
comment on column private.usage_rollup_daily.canonical_model is 'See public.usage_records.canonical_model.';

-- The aggregation SQL of the capture trigger and the refresh: canonical_model grouped, and yielded last.
create or replace function private.usage_rollup_select(source text, sign integer) returns text
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
           private.histogram_of(analytics.latency_slot(r.latency_ms), %2$s) as latency_histogram,
           r.canonical_model
    from (%1$s) r
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, r.canonical_model
  $sql$, source, sign)
$$;

create or replace function private.fold_usage_deltas(raw_from timestamptz, raw_to timestamptz) returns jsonb
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
           analytics.merge_latency(latency_histogram) as latency_histogram, canonical_model
    from parts
    group by bucket, org_id, team, project, provider, model, feature, api_key_id, status, canonical_model
  ), daily as (
    select date_trunc('day', bucket, 'UTC') as bucket, org_id, team, project, provider, model, feature, api_key_id,
           status, sum(requests) as requests, sum(errors) as errors, sum(timeouts) as timeouts,
           sum(rate_limited) as rate_limited, sum(retries) as retries, sum(cache_hits) as cache_hits,
           sum(unpriced) as unpriced, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
           sum(cached_tokens) as cached_tokens, sum(cache_write_tokens) as cache_write_tokens,
           sum(reasoning_tokens) as reasoning_tokens, sum(cost_usd) as cost_usd,
           sum(latency_count) as latency_count, sum(latency_sum_ms) as latency_sum_ms,
           analytics.merge_latency(latency_histogram) as latency_histogram, canonical_model
    from hourly
    group by 1, org_id, team, project, provider, model, feature, api_key_id, status, canonical_model
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

-- ---------------------------------------------------------------- Timescale-licensed path
-- Continuous aggregates cannot gain a grouping column: they, the definer functions reading them and
-- the views over those are rebuilt with canonical_model. Untestable on the Apache edition (see rollups).
do $$
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    drop view analytics.usage_hourly, analytics.usage_daily;
    drop function private.usage_rollup_rows(text);
    drop materialized view private.usage_rollup_daily_cagg;
    drop materialized view private.usage_rollup_hourly_cagg;
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
             analytics.latency_histogram(latency_ms) as latency_histogram, canonical_model
      from public.usage_records
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9, canonical_model
      with no data $v$;
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
             analytics.merge_latency(latency_histogram) as latency_histogram, canonical_model
      from private.usage_rollup_hourly_cagg
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9, canonical_model
      with no data $v$;
    perform extensions.add_continuous_aggregate_policy('private.usage_rollup_hourly_cagg',
      start_offset => null, end_offset => interval '1 minute', schedule_interval => interval '1 minute');
    perform extensions.add_continuous_aggregate_policy('private.usage_rollup_daily_cagg',
      start_offset => null, end_offset => interval '1 hour', schedule_interval => interval '1 minute');
    revoke all on private.usage_rollup_hourly_cagg, private.usage_rollup_daily_cagg from public, authenticated;
    execute $f$
      create function private.usage_rollup_rows(grain text)
      returns table (bucket timestamptz, org_id uuid, team text, project text, provider text, model text,
                     feature text, api_key_id uuid, status text, requests bigint, errors bigint, timeouts bigint,
                     rate_limited bigint, retries bigint, cache_hits bigint, unpriced bigint, input_tokens bigint,
                     output_tokens bigint, cached_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint,
                     cost_usd numeric, latency_count bigint, latency_sum_ms bigint, latency_histogram bigint[],
                     canonical_model text)
      language sql stable security definer set search_path = '' as $b$
        select c.bucket, c.org_id, c.team, c.project, c.provider, c.model, c.feature, c.api_key_id, c.status,
               c.requests, c.errors, c.timeouts, c.rate_limited, c.retries, c.cache_hits, c.unpriced, c.input_tokens,
               c.output_tokens, c.cached_tokens, c.cache_write_tokens, c.reasoning_tokens, c.cost_usd,
               c.latency_count, c.latency_sum_ms, c.latency_histogram, c.canonical_model
        from private.usage_rollup_hourly_cagg c
        where grain = 'hour'
          and c.org_id = any (private.org_ids_with('usage.read') || private.analyst_org_ids())
        union all
        select c.bucket, c.org_id, c.team, c.project, c.provider, c.model, c.feature, c.api_key_id, c.status,
               c.requests, c.errors, c.timeouts, c.rate_limited, c.retries, c.cache_hits, c.unpriced, c.input_tokens,
               c.output_tokens, c.cached_tokens, c.cache_write_tokens, c.reasoning_tokens, c.cost_usd,
               c.latency_count, c.latency_sum_ms, c.latency_histogram, c.canonical_model
        from private.usage_rollup_daily_cagg c
        where grain = 'day'
          and c.org_id = any (private.org_ids_with('usage.read') || private.analyst_org_ids())
      $b$ $f$;
    comment on function private.usage_rollup_rows(text) is
      'Timescale path: continuous-aggregate buckets (hour|day) of the caller''s organizations.';
    revoke all on function private.usage_rollup_rows(text) from public;
    grant execute on function private.usage_rollup_rows(text) to authenticated, tokentra_analyst, service_role;
    create view analytics.usage_hourly with (security_invoker = true) as select * from private.usage_rollup_rows('hour');
    create view analytics.usage_daily with (security_invoker = true) as select * from private.usage_rollup_rows('day');
    grant select on analytics.usage_hourly, analytics.usage_daily to authenticated, tokentra_analyst, service_role;
  end if;
end
$$;

-- ---------------------------------------------------------------- read views
-- Portable path: the same union as before with canonical_model appended (create or replace keeps the
-- views' grants and comments).
do $$
declare
  sums constant text := $s$
    sum(requests)::bigint as requests, sum(errors)::bigint as errors, sum(timeouts)::bigint as timeouts,
    sum(rate_limited)::bigint as rate_limited, sum(retries)::bigint as retries,
    sum(cache_hits)::bigint as cache_hits, sum(unpriced)::bigint as unpriced,
    sum(input_tokens)::bigint as input_tokens, sum(output_tokens)::bigint as output_tokens,
    sum(cached_tokens)::bigint as cached_tokens, sum(cache_write_tokens)::bigint as cache_write_tokens,
    sum(reasoning_tokens)::bigint as reasoning_tokens, sum(cost_usd) as cost_usd,
    sum(latency_count)::bigint as latency_count, sum(latency_sum_ms)::bigint as latency_sum_ms,
    analytics.merge_latency(latency_histogram) as latency_histogram $s$;
  stored constant text := $s$
    bucket, org_id, team, project, provider, model, feature, api_key_id, status, requests, errors, timeouts,
    rate_limited, retries, cache_hits, unpriced, input_tokens, output_tokens, cached_tokens, cache_write_tokens,
    reasoning_tokens, cost_usd, latency_count, latency_sum_ms, latency_histogram, canonical_model $s$;
  dims constant text := 'org_id, team, project, provider, model, feature, api_key_id, status';
  grain text;
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    return;
  end if;
  foreach grain in array array['hour', 'day'] loop
    execute format($v$
      create or replace view analytics.%1$I with (security_invoker = true) as
      select bucket, %2$s, %3$s, canonical_model
      from (
        select %4$s from private.%5$I
        union all
        select date_trunc(%6$L, bucket, 'UTC'), %2$s, requests, errors, timeouts, rate_limited, retries, cache_hits,
               unpriced, input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
               latency_count, latency_sum_ms, latency_histogram, canonical_model
        from private.usage_rollup_deltas
        union all
        select date_trunc(%6$L, u.occurred_at, 'UTC'), u.org_id, u.team, u.project, u.provider, u.model, u.feature,
               u.api_key_id, u.status, count(*), count(*) filter (where u.status <> 'success'),
               count(*) filter (where u.is_timeout), count(*) filter (where u.is_rate_limited), sum(u.retry_count),
               count(*) filter (where u.cache_hit), count(*) filter (where not u.priced), sum(u.input_tokens),
               sum(u.output_tokens), sum(u.cached_tokens), sum(u.cache_write_tokens), sum(u.reasoning_tokens),
               coalesce(sum(u.cost_usd), 0), count(u.latency_ms), coalesce(sum(u.latency_ms), 0),
               analytics.latency_histogram(u.latency_ms), u.canonical_model
        from public.usage_records u
        where u.occurred_at >= (select s.watermark from private.usage_rollup_state s)
        group by 1, 2, 3, 4, 5, 6, 7, 8, 9, u.canonical_model
      ) s
      group by bucket, %2$s, canonical_model
      having sum(requests) <> 0 $v$,
      'usage_' || case grain when 'hour' then 'hourly' else 'daily' end, dims, sums, stored,
      'usage_rollup_' || case grain when 'hour' then 'hourly' else 'daily' end, grain);
  end loop;
end
$$;
comment on view analytics.usage_hourly is
  'Usage per UTC hour and dimensions (organization, team, project, provider, model, canonical model, feature, '
  'API key, status). Exact: equals the same sums over analytics.usage_records, including rows stored a moment ago.';
comment on column analytics.usage_hourly.canonical_model is
  'The model calls are grouped under (see analytics.usage_records.canonical_model); model is the name as sent.';
comment on column analytics.usage_daily.canonical_model is
  'The model calls are grouped under (see analytics.usage_records.canonical_model); model is the name as sent.';

-- Raw rows: canonical_model appended.
create or replace view analytics.usage_records with (security_invoker = true) as
  select id, org_id, occurred_at, received_at, request_id, source, provider, model, price_model, endpoint,
         input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, service_tier, cost_usd,
         client_cost_usd, currency, price_id, priced, latency_ms, time_to_first_token_ms, status, error_code,
         retry_count, is_timeout, is_rate_limited, is_streaming, routed_from_model, cache_hit, prompt_hash,
         task_type, team, project, feature, end_user_id, api_key_id, project_id, metadata, canonical_model
  from public.usage_records;
comment on column analytics.usage_records.canonical_model is
  'The model this call is grouped under: the model id its price resolved to (genai-prices'' match rules or the '
  'organization''s own price), else the name without vendor prefix and snapshot date. model keeps the name as sent.';

-- ---------------------------------------------------------------- query functions
create or replace function private.usage_dimensions() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['org_id', 'team', 'project', 'provider', 'model', 'feature', 'api_key_id', 'status', 'canonical_model']
$$;

-- Filters on the first eight dimensions bind $3 .. $10 and the watermark $11 (as before); the ninth,
-- canonical_model, binds $12. See usage_summary.
create or replace function private.usage_sources_sql(grain text, filters text, with_latency boolean) returns text
language sql stable set search_path = '' as $$
  select case when private.rollups_are_continuous_aggregates() then
    format('select * from analytics.%I where bucket >= $1 and bucket < $2 %s',
           case grain when 'hour' then 'usage_hourly' else 'usage_daily' end, filters)
  else format($s$
      select bucket, org_id, team, project, provider, model, feature, api_key_id, status, canonical_model, requests,
             errors, timeouts, rate_limited, retries, cache_hits, unpriced, input_tokens, output_tokens, cached_tokens,
             cache_write_tokens, reasoning_tokens, cost_usd, latency_count, latency_sum_ms, %1$s as latency_histogram
      from private.%2$I where bucket >= $1 and bucket < $2 %3$s
      union all
      select date_bin(%5$L, bucket, timestamptz '2000-01-01 00:00:00+00'), org_id, team, project, provider, model,
             feature, api_key_id, status, canonical_model, requests, errors, timeouts, rate_limited, retries,
             cache_hits, unpriced, input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
             cost_usd, latency_count, latency_sum_ms, %1$s
      from private.usage_rollup_deltas where bucket >= $1 and bucket < $2 %3$s
      union all
      select date_bin(%5$L, occurred_at, timestamptz '2000-01-01 00:00:00+00'), org_id, team, project, provider,
             model, feature, api_key_id, status, canonical_model, 1,
             (status <> 'success')::integer, is_timeout::integer, is_rate_limited::integer, retry_count,
             cache_hit::integer, (not priced)::integer, input_tokens, output_tokens, cached_tokens, cache_write_tokens,
             reasoning_tokens, coalesce(cost_usd, 0), (latency_ms is not null)::integer, coalesce(latency_ms, 0), %4$s
      from public.usage_records where occurred_at >= $11 and occurred_at >= $1 and occurred_at < $2 %3$s $s$,
      case when with_latency then 'latency_histogram' else 'null::bigint[]' end,
      case grain when 'hour' then 'usage_rollup_hourly' else 'usage_rollup_daily' end,
      filters,
      case when with_latency then 'private.histogram_put_latency(null, latency_ms)' else 'null::bigint[]' end,
      '1 ' || grain)
  end
$$;

-- The summary gains canonical_model as a column, a group_by dimension and a filter (last argument, so
-- callers naming their arguments are unaffected). Its row type changes, so it is replaced, not altered.
drop function public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text);
drop function public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text, uuid,
                                      text);
drop function private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text, uuid,
                                     text, boolean, boolean);

create function private.usage_summary(
  start_at timestamptz, end_at timestamptz, granularity text default 'total', group_by text[] default '{}',
  only_org uuid default null, only_team text default null, only_project text default null,
  only_feature text default null, only_model text default null, only_provider text default null,
  only_api_key uuid default null, only_status text default null, with_latency boolean default false,
  lean boolean default false, only_canonical_model text default null)
returns table (
  bucket timestamptz, org_id uuid, team text, project text, provider text, model text, feature text,
  api_key_id uuid, status text, canonical_model text, requests bigint, errors bigint, timeouts bigint,
  rate_limited bigint, retries bigint, cache_hits bigint, unpriced bigint, input_tokens bigint, output_tokens bigint,
  cached_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint, cost_usd numeric,
  avg_latency_ms numeric, latency_p50_ms integer, latency_p95_ms integer, latency_p99_ms integer)
language plpgsql stable set search_path = '' as $$
declare
  dims constant text[] := private.usage_dimensions();
  dim_types constant text[] := array['uuid', 'text', 'text', 'text', 'text', 'text', 'uuid', 'text', 'text'];
  filter_values constant text[] := array[only_org::text, only_team, only_project, only_provider, only_model,
                                         only_feature, only_api_key::text, only_status, only_canonical_model];
  whole_days boolean := start_at = date_trunc('day', start_at, 'UTC') and end_at = date_trunc('day', end_at, 'UTC');
  -- Read in the same snapshot as the query below (a stable function keeps its caller's snapshot).
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
  grain text;
  bucket_expr text;
  select_dims text := '';
  group_dims text := '';
  filters text := '';
  sources text;
  query text;
begin
  if granularity is null or granularity not in ('total', 'hour', 'day') then
    raise exception 'granularity must be total, hour or day' using errcode = '22023';
  end if;
  if start_at is null or end_at is null or end_at <= start_at then
    raise exception 'the range must be non-empty (start before end)' using errcode = '22023';
  end if;
  if not coalesce(group_by, '{}') <@ dims then
    raise exception 'group_by may only name %', array_to_string(dims, ', ') using errcode = '22023';
  end if;
  grain := case when granularity = 'hour' or not whole_days then 'hour' else 'day' end;
  -- Every source yields buckets of the source's grain; only a coarser granularity truncates again.
  bucket_expr := case when granularity = 'total' then 'null::timestamptz'
                      when granularity = grain then 'bucket'
                      else format('date_trunc(%L, bucket, %L)', granularity, 'UTC') end;
  if grain = 'hour' and (start_at <> date_trunc('hour', start_at, 'UTC') or end_at <> date_trunc('hour', end_at, 'UTC')) then
    raise exception 'start and end must fall on whole UTC hours' using errcode = '22023';
  end if;

  for i in 1 .. array_length(dims, 1) loop
    if dims[i] = any (coalesce(group_by, '{}')) then
      select_dims := select_dims || format(', %I', dims[i]);
      group_dims := group_dims || format(', %I', dims[i]);
    else
      select_dims := select_dims || format(', null::%s', dim_types[i]);
    end if;
    -- $3 .. $10 carry the first eight filters, $11 the watermark, $12 the canonical model.
    if filter_values[i] is not null then
      filters := filters || format(' and %I = $%s', dims[i], case when i <= 8 then i + 2 else 12 end);
    end if;
  end loop;

  sources := private.usage_sources_sql(grain, filters, with_latency);

  query := format($q$
    select %s%s, sum(requests)::bigint, sum(errors)::bigint, %s, sum(cost_usd), %s, %s
    from (%s) s
    group by %s
    having sum(requests) > 0
    order by 1, sum(cost_usd) desc $q$,
    bucket_expr,
    select_dims,
    -- Lean callers (the overview) skip the token and counter sums: each sum is a state per group.
    case when lean then 'null::bigint, null::bigint, null::bigint, null::bigint, null::bigint, null::bigint, '
                        'null::bigint, null::bigint, null::bigint, null::bigint'
    else 'sum(timeouts)::bigint, sum(rate_limited)::bigint, sum(retries)::bigint, sum(cache_hits)::bigint, '
         'sum(unpriced)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint, sum(cached_tokens)::bigint, '
         'sum(cache_write_tokens)::bigint, sum(reasoning_tokens)::bigint' end,
    case when lean then 'null::numeric'
    else 'round(sum(latency_sum_ms)::numeric / nullif(sum(latency_count), 0), 1)' end,
    case when with_latency then
      'analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.5), '
      'analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.95), '
      'analytics.latency_percentile(analytics.merge_latency(latency_histogram), 0.99)'
    else 'null::integer, null::integer, null::integer' end,
    sources,
    case granularity when 'total' then '1' else bucket_expr end || group_dims);
  return query execute query
    using start_at, end_at, only_org, only_team, only_project, only_provider, only_model, only_feature,
          only_api_key, only_status, wm, only_canonical_model;
end
$$;
comment on function private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text,
                                          uuid, text, boolean, boolean, text) is
  'Usage sums over [start_at, end_at) per bucket (total|hour|day) and group_by dimensions, with optional filters '
  '(canonical model included) and latency percentiles (lean: requests, errors and cost only); reads rollups, '
  'pending deltas and the raw tail under the caller''s RLS.';

-- GET /costs. `total_cache_hits` counted calls answered from a response cache, which readers took for
-- prompt-cache reads; `total_response_cache_hits` says so, and the old key stays (deprecated, same value)
-- so existing dashboards keep working.
create function public.cost_breakdown(
  start_date date, end_date date, group_by text[] default '{}', granularity text default 'total',
  org uuid default null, team text default null, project text default null, feature text default null,
  model text default null, provider text default null, api_key uuid default null, status text default null,
  canonical_model text default null)
returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce(jsonb_agg(
      jsonb_strip_nulls(jsonb_build_object(
        'date', case when granularity = 'day' then (s.bucket at time zone 'UTC')::date end,
        'hour', case when granularity = 'hour' then s.bucket end))
      || (to_jsonb(s) - 'bucket' - 'avg_latency_ms' - 'latency_p50_ms' - 'latency_p95_ms' - 'latency_p99_ms'
          - 'requests' - 'errors' - 'timeouts' - 'rate_limited' - 'retries' - 'cache_hits' - 'unpriced'
          - 'input_tokens' - 'output_tokens' - 'cached_tokens' - 'cache_write_tokens' - 'reasoning_tokens' - 'cost_usd'
          - array(select d from unnest(private.usage_dimensions()) d where d <> all (coalesce(group_by, '{}'))))
      || jsonb_build_object(
        'total_cost', s.cost_usd, 'total_requests', s.requests, 'total_input_tokens', s.input_tokens,
        'total_output_tokens', s.output_tokens, 'total_cached_tokens', s.cached_tokens,
        'total_cache_write_tokens', s.cache_write_tokens, 'total_reasoning_tokens', s.reasoning_tokens,
        'total_errors', s.errors, 'total_timeouts', s.timeouts, 'total_rate_limited', s.rate_limited,
        'total_retries', s.retries, 'total_response_cache_hits', s.cache_hits, 'total_cache_hits', s.cache_hits,
        'unpriced_requests', s.unpriced)
      order by s.bucket, s.cost_usd desc), '[]'::jsonb),
    'meta', jsonb_build_object(
      'start_date', start_date, 'end_date', end_date, 'currency', 'USD', 'granularity', granularity,
      'group_by', to_jsonb(coalesce(group_by, '{}')),
      'deprecated', jsonb_build_object('total_cache_hits', 'use total_response_cache_hits (same value)')))
  from private.usage_summary(start_date::timestamp at time zone 'UTC', (end_date + 1)::timestamp at time zone 'UTC',
                             granularity, group_by, org, team, project, feature, model, provider, api_key, status,
                             false, false, canonical_model) s
$$;
comment on function public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text,
                                          text) is
  'GET /costs: cost and token totals from start_date to end_date (inclusive, UTC days) per group_by dimensions '
  '(canonical_model included) and granularity (total|day|hour), as {"data": [...], "meta": {...}}. '
  'total_response_cache_hits counts calls answered from a response cache (total_cache_hits: deprecated alias).';

create function public.usage_timeseries(
  start_at timestamptz, end_at timestamptz, granularity text default 'hour', group_by text default null,
  org uuid default null, team text default null, project text default null, feature text default null,
  model text default null, provider text default null, api_key uuid default null, status text default null,
  canonical_model text default null)
returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce(jsonb_agg(
      jsonb_build_object('bucket', s.bucket)
      || case when group_by is null then '{}'::jsonb else jsonb_build_object(group_by, to_jsonb(s) -> group_by) end
      || jsonb_build_object(
        'cost_usd', s.cost_usd, 'requests', s.requests, 'errors', s.errors, 'input_tokens', s.input_tokens,
        'output_tokens', s.output_tokens, 'cached_tokens', s.cached_tokens, 'avg_latency_ms', s.avg_latency_ms,
        'latency_p50_ms', s.latency_p50_ms, 'latency_p95_ms', s.latency_p95_ms, 'latency_p99_ms', s.latency_p99_ms)
      order by s.bucket, s.cost_usd desc), '[]'::jsonb),
    'meta', jsonb_build_object('start', start_at, 'end', end_at, 'granularity', granularity, 'group_by', group_by,
                               'currency', 'USD'))
  from private.usage_summary(start_at, end_at, granularity,
                             case when group_by is null then '{}'::text[] else array[group_by] end,
                             org, team, project, feature, model, provider, api_key, status, true, false,
                             canonical_model) s
$$;
comment on function public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text,
                                            uuid, text, text) is
  'GET /usage/timeseries: per-bucket (hour|day) cost, requests, tokens and latency percentiles over '
  '[start_at, end_at), optionally one series per value of one dimension (canonical_model included).';

revoke all on function
  private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text, uuid, text, boolean,
                        boolean, text),
  public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text, text),
  public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text, uuid, text, text)
  from public;
grant execute on function
  private.usage_summary(timestamptz, timestamptz, text, text[], uuid, text, text, text, text, text, uuid, text, boolean,
                        boolean, text),
  public.cost_breakdown(date, date, text[], text, uuid, text, text, text, text, text, uuid, text, text),
  public.usage_timeseries(timestamptz, timestamptz, text, text, uuid, text, text, text, text, text, uuid, text, text)
  to authenticated, tokentra_analyst, service_role;
