-- The aggregates most detectors start from, read straight from the daily rollup, its pending deltas and
-- the raw tail past the watermark: the union analytics.usage_daily sums, without its regrouping of
-- every dimension and merging of latency histograms, which the detectors never read (measured on a
-- chunk of 100 organizations of `tokentra bench engine`: 200 ms through the view, 80 ms here, the
-- rollup read as an index-only scan of its covering unique index).
-- No SET clause and one SELECT each: the planner inlines them into the detector's statement, so a
-- detector's filters reach the scans; every name is schema-qualified for that reason.

-- ---------------------------------------------------------------- per day
create function private.detector_daily(p_orgs uuid[], p_since timestamptz)
returns table (org_id uuid, feature text, provider text, model text, day date, status text, requests bigint,
               errors bigint, timeouts bigint, retries bigint, rate_limited bigint, input_tokens bigint,
               output_tokens bigint, cached_tokens bigint, cost numeric)
language sql stable parallel safe as $$
  select x.org_id, coalesce(x.feature, '(none)'), x.provider, x.canonical_model, (x.bucket at time zone 'UTC')::date,
         x.status, x.requests, x.errors, x.timeouts, x.retries, x.rate_limited, x.input_tokens, x.output_tokens,
         x.cached_tokens, x.cost_usd
    from (
      select d.org_id, d.feature, d.provider, d.canonical_model, d.bucket, d.status, d.requests, d.errors, d.timeouts,
             d.retries, d.rate_limited, d.input_tokens, d.output_tokens, d.cached_tokens, d.cost_usd
        from private.usage_rollup_daily d
       where d.org_id = any (p_orgs) and d.bucket >= p_since
      union all
      select d.org_id, d.feature, d.provider, d.canonical_model, pg_catalog.date_trunc('day', d.bucket, 'UTC'),
             d.status, d.requests, d.errors, d.timeouts, d.retries, d.rate_limited, d.input_tokens, d.output_tokens,
             d.cached_tokens, d.cost_usd
        from private.usage_rollup_deltas d
       where d.org_id = any (p_orgs) and d.bucket >= p_since
      union all
      select r.org_id, r.feature, r.provider, r.canonical_model, pg_catalog.date_trunc('day', r.occurred_at, 'UTC'),
             r.status, 1, (r.status <> 'success')::integer, r.is_timeout::integer, r.retry_count,
             r.is_rate_limited::integer, r.input_tokens, r.output_tokens, r.cached_tokens, coalesce(r.cost_usd, 0)
        from public.usage_records r
       where r.org_id = any (p_orgs) and r.occurred_at >= p_since
         and r.occurred_at >= (select s.watermark from private.usage_rollup_state s)
    ) x
$$;
comment on function private.detector_daily(uuid[], timestamptz) is
  'Usage rows of the given organizations since p_since as the daily rollup holds them (rollup, pending deltas, '
  'raw tail), per feature (''(none)'' if untagged), provider, canonical model, UTC day and status; not summed.';

-- ---------------------------------------------------------------- per scope
-- Per organization, feature, provider and canonical model (a snapshot's calls and its bare name's are
-- one scope): the window's sums and the daily cost series the evidence charts show.
create function private.detector_scopes(p_orgs uuid[], p_since timestamptz)
returns table (org_id uuid, feature text, provider text, model text, requests bigint, errors bigint,
               timeouts bigint, retries bigint, rate_limited bigint, input_tokens bigint, output_tokens bigint,
               cached_tokens bigint, cost numeric, error_cost numeric, timeout_cost numeric, cancelled bigint,
               cancelled_cost numeric, rate_limited_calls bigint, rate_limited_cost numeric, series jsonb)
language sql stable parallel safe as $$
  select d.org_id, d.feature, d.provider, d.model,
         sum(d.requests)::bigint, sum(d.errors)::bigint, sum(d.timeouts)::bigint, sum(d.retries)::bigint,
         sum(d.rate_limited)::bigint, sum(d.input_tokens)::bigint, sum(d.output_tokens)::bigint,
         sum(d.cached_tokens)::bigint, sum(d.cost), sum(d.error_cost), sum(d.timeout_cost),
         sum(d.cancelled)::bigint, sum(d.cancelled_cost), sum(d.rate_limited_calls)::bigint,
         sum(d.rate_limited_cost),
         pg_catalog.jsonb_object_agg(d.day::text, round(d.cost, 6) order by d.day)
    from (
      select u.org_id, u.feature, u.provider, u.model, u.day,
             sum(u.requests) as requests, coalesce(sum(u.errors) filter (where u.status = 'error'), 0) as errors,
             sum(u.timeouts) as timeouts, sum(u.retries) as retries, sum(u.rate_limited) as rate_limited,
             sum(u.input_tokens) as input_tokens, sum(u.output_tokens) as output_tokens,
             sum(u.cached_tokens) as cached_tokens, sum(u.cost) as cost,
             coalesce(sum(u.cost) filter (where u.status = 'error'), 0) as error_cost,
             coalesce(sum(u.cost) filter (where u.status = 'timeout'), 0) as timeout_cost,
             coalesce(sum(u.requests) filter (where u.status = 'cancelled'), 0) as cancelled,
             coalesce(sum(u.cost) filter (where u.status = 'cancelled'), 0) as cancelled_cost,
             coalesce(sum(u.requests) filter (where u.status = 'rate_limited'), 0) as rate_limited_calls,
             coalesce(sum(u.cost) filter (where u.status = 'rate_limited'), 0) as rate_limited_cost
        from private.detector_daily(p_orgs, p_since) u
       group by 1, 2, 3, 4, 5
      having sum(u.requests) <> 0
    ) d
   group by 1, 2, 3, 4
$$;
comment on function private.detector_scopes(uuid[], timestamptz) is
  'Per organization, feature (''(none)'' if untagged), provider and canonical model since p_since: the daily '
  'rollups'' sums (requests, errors, timeouts, retries, rate-limit flags, tokens, cost; calls and cost of error, '
  'timeout, cancelled and rate-limited calls) and the daily cost series {"YYYY-MM-DD": usd}.';

-- ---------------------------------------------------------------- the window
-- The first day with usage per organization from an index probe into each source (the rollup's and the
-- raw table's indexes lead with the organization and the time), not from summing the window's rows.
create or replace function private.detector_window(p_orgs uuid[], p_now timestamptz)
returns table (org_id uuid, since timestamptz, days numeric, monthly numeric)
language sql stable set search_path = '' as $$
  with w as (
    select (date_trunc('day', (p_now - interval '30 days') at time zone 'UTC') at time zone 'UTC') as since,
           (select s.watermark from private.usage_rollup_state s) as watermark
  )
  select o.org_id, w.since, d.days, 30 / d.days
    from unnest(p_orgs) o (org_id)
   cross join w
   cross join lateral (
     select least(
       (select min(r.bucket) from private.usage_rollup_daily r
         where r.org_id = o.org_id and r.bucket >= w.since and r.requests <> 0),
       (select min(date_trunc('day', r.bucket, 'UTC')) from private.usage_rollup_deltas r
         where r.org_id = o.org_id and r.bucket >= w.since),
       (select min(date_trunc('day', r.occurred_at, 'UTC')) from public.usage_records r
         where r.org_id = o.org_id and r.occurred_at >= w.since and r.occurred_at >= w.watermark)) as first_at) f
   cross join lateral (
     select greatest(extract(epoch from p_now - greatest(coalesce(f.first_at, p_now), w.since)) / 86400, 1.0)
            as days) d
$$;

revoke all on function private.detector_daily(uuid[], timestamptz), private.detector_scopes(uuid[], timestamptz)
  from public;
grant execute on function private.detector_daily(uuid[], timestamptz), private.detector_scopes(uuid[], timestamptz)
  to service_role;
