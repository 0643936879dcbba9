-- The evidence an anomaly's explanation may cite: its own figures, and its scope's usage in the anomaly
-- window against a seasonal baseline window, with the cost change decomposed by model, feature, team,
-- project and API key, and into volume, mix and rate. Read from the rollups, run as the caller (RLS).
--
-- Baseline: the same clock window on the previous days (hourly anomalies: 7 days back) or weeks (daily
-- anomalies: 4 weeks back), starting at the first shift that does not overlap the window itself, skipping
-- shifts that begin before the organization's first usage, and averaged. A 3-hour spike from 13:00 is
-- thus compared with 13:00-16:00 of the seven days before, so the daily shape does not read as a change.
--
-- Cost change split (exact; R requests, C cost, cpr = C/R; w window, b baseline; m a model):
--   volume = (R_w - R_b) * cpr_b                       more or fewer calls at the old average cost per call
--   mix    = sum_m (R_w,m - R_w * R_b,m / R_b) * cpr_b,m  calls moving between models of different cost
--   rate   = (C_w - C_b) - volume - mix                 cost per call within the same model (tokens, prices)
-- so volume + mix + rate = C_w - C_b. A model absent from the baseline takes its window cost per call as
-- cpr_b,m (its cost is mix, not rate); with no baseline calls at all, the whole change is volume.
--
-- Rounding keeps every sum exact in the evidence: money to 4 places, and each "(other)" part and the
-- rate are computed from the rounded figures, so parts add up to the rounded total to the last digit.

-- ---------------------------------------------------------------- helpers
-- A UTC timestamp as the evidence writes it (independent of the session's time zone).
create function private.evidence_time(t timestamptz) returns text
language sql immutable parallel safe set search_path = '' as $$
  select to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"')
$$;
comment on function private.evidence_time(timestamptz) is 'A timestamp as evidence text: 2026-11-22T13:00Z (UTC).';

-- Usage figures of one side (window or baseline) as evidence.
create function private.evidence_usage(cost numeric, requests numeric, tokens numeric, errors numeric,
                                       latency_sum numeric, latency_count numeric, request_digits integer)
returns jsonb
language sql immutable parallel safe set search_path = '' as $$
  select jsonb_strip_nulls(jsonb_build_object(
    'cost_usd', trim_scale(round(coalesce(cost, 0), 4)),
    'requests', trim_scale(round(coalesce(requests, 0), request_digits)),
    'cost_per_request_usd', trim_scale(round(cost / nullif(requests, 0), 6)),
    'tokens_per_request', trim_scale(round(tokens / nullif(requests, 0), 1)),
    'error_rate', trim_scale(round(errors / nullif(requests, 0), 4)),
    'latency_ms', trim_scale(round(latency_sum / nullif(latency_count, 0)))))
$$;
comment on function private.evidence_usage(numeric, numeric, numeric, numeric, numeric, numeric, integer) is
  'Cost, requests, cost and tokens per request, error rate and mean latency of one side, rounded for evidence.';

-- One dimension's share of the cost change: the top_n values by absolute change, and "(other)" for the
-- rest, computed from the rounded totals so the parts sum to them exactly.
create function private.anomaly_breakdown(segments jsonb, dim text, top_n integer) returns jsonb
language sql stable set search_path = '' as $$
  with s as (
    select case dim when 'model' then x.model when 'feature' then x.feature when 'team' then x.team
                    when 'project' then x.project when 'api_key' then x.api_key_id::text end as value,
           x.side, x.requests, x.cost_usd
    from jsonb_to_recordset(segments) as x(side text, model text, feature text, team text, project text,
                                           api_key_id uuid, requests numeric, cost_usd numeric)
  ), v as (
    select coalesce(s.value, '(none)') as value,
           round(coalesce(sum(s.cost_usd) filter (where s.side = 'window'), 0), 4) as cw,
           round(coalesce(sum(s.cost_usd) filter (where s.side = 'baseline'), 0), 4) as cb,
           round(coalesce(sum(s.requests) filter (where s.side = 'window'), 0), 0) as rw,
           round(coalesce(sum(s.requests) filter (where s.side = 'baseline'), 0), 1) as rb
    from s group by 1
  ), tot as (
    select round(coalesce(sum(s.cost_usd) filter (where s.side = 'window'), 0), 4) as cw,
           round(coalesce(sum(s.cost_usd) filter (where s.side = 'baseline'), 0), 4) as cb,
           round(coalesce(sum(s.requests) filter (where s.side = 'window'), 0), 0) as rw,
           round(coalesce(sum(s.requests) filter (where s.side = 'baseline'), 0), 1) as rb
    from s
  ), ranked as (
    select v.*, row_number() over (order by abs(v.cw - v.cb) desc, v.value) as rank from v
  ), parts as (
    select r.rank, r.value, r.cw, r.cb, r.rw, r.rb, null::bigint as n from ranked r where r.rank <= top_n
    union all
    select top_n + 1, '(other)', tot.cw - coalesce(sum(r.cw) filter (where r.rank <= top_n), 0),
           tot.cb - coalesce(sum(r.cb) filter (where r.rank <= top_n), 0),
           tot.rw - coalesce(sum(r.rw) filter (where r.rank <= top_n), 0),
           tot.rb - coalesce(sum(r.rb) filter (where r.rank <= top_n), 0),
           count(*) filter (where r.rank > top_n)
    from ranked r, tot group by tot.cw, tot.cb, tot.rw, tot.rb having count(*) > top_n
  )
  select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'value', p.value, 'other_values', p.n,
           'window_cost_usd', trim_scale(p.cw), 'baseline_cost_usd', trim_scale(p.cb),
           'change_usd', trim_scale(p.cw - p.cb),
           'share_of_change_pct', trim_scale(round(100 * (p.cw - p.cb) / nullif(tot.cw - tot.cb, 0), 1)),
           'window_requests', trim_scale(p.rw), 'baseline_requests', trim_scale(p.rb)))
         order by p.rank), '[]'::jsonb)
  from parts p, tot
$$;
comment on function private.anomaly_breakdown(jsonb, text, integer) is
  'Cost change by one dimension (top values and "(other)"), parts summing exactly to the rounded totals.';

-- ---------------------------------------------------------------- evidence
create function public.anomaly_evidence(anomaly uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
  a public.anomalies;
  step interval;
  period interval;
  wanted integer;
  hourly boolean;
  ws timestamptz;
  we timestamptz;
  first_k integer;
  first_seen timestamptz;
  shifts integer[];
  n integer;
  since timestamptz;
  segments jsonb;
  usage_part jsonb;
  split jsonb;
  by_dim jsonb := '{}';
  dim text;
begin
  select * into a from public.anomalies x where x.id = anomaly;
  if not found then
    return null;  -- no such anomaly, or RLS hides it
  end if;
  step := case a.grain when 'hour' then interval '1 hour' else interval '1 day' end;
  period := case a.grain when 'hour' then interval '1 day' else interval '7 days' end;
  wanted := case a.grain when 'hour' then 7 else 4 end;
  hourly := a.grain = 'hour';
  ws := a.window_start;
  we := coalesce(a.window_end, a.window_start + step);
  first_k := greatest(1, ceil(extract(epoch from we - ws) / extract(epoch from period))::integer);

  -- Static SQL over both views, the unused one gated off, so plpgsql caches the plans: planning a
  -- query over the partitioned raw tail costs more than running it.
  select min(u.bucket) into first_seen
  from (select h.bucket from analytics.usage_hourly h
         where hourly and h.org_id = a.org_id and h.bucket >= ws - (first_k + wanted - 1) * period and h.bucket < we
        union all
        select d.bucket from analytics.usage_daily d
         where not hourly and d.org_id = a.org_id and d.bucket >= ws - (first_k + wanted - 1) * period
           and d.bucket < we) u;
  select coalesce(array_agg(k order by k), '{}') into shifts
  from generate_series(first_k, first_k + wanted - 1) k
  where ws - k * period >= first_seen;
  n := cardinality(shifts);
  since := ws - coalesce(shifts[n], 0) * period;

  -- The scope's usage per segment and side; a baseline bucket counts once per baseline window holding it
  -- (windows longer than the period overlap), and baseline sums are divided by the number of windows.
  with u as (
    select h.bucket, h.model, h.feature, h.team, h.project, h.api_key_id, h.requests, h.cost_usd,
           h.input_tokens + h.output_tokens as tokens, h.errors, h.latency_sum_ms, h.latency_count
    from analytics.usage_hourly h
    where hourly and h.org_id = a.org_id and h.bucket >= since and h.bucket < we
    union all
    select d.bucket, d.model, d.feature, d.team, d.project, d.api_key_id, d.requests, d.cost_usd,
           d.input_tokens + d.output_tokens, d.errors, d.latency_sum_ms, d.latency_count
    from analytics.usage_daily d
    where not hourly and d.org_id = a.org_id and d.bucket >= since and d.bucket < we
  ), b as (
    select u.*, case when u.bucket >= ws then 'window' else 'baseline' end as side,
           case when u.bucket >= ws then 1 else greatest(n, 1) end::numeric as div,
           case when u.bucket >= ws then 1
                else (select count(*) from unnest(shifts) k
                      where u.bucket >= ws - k * period and u.bucket < we - k * period) end as mult
    from u
    where case a.dimension when 'organization' then true when 'team' then u.team = a.dimension_value
                           when 'project' then u.project = a.dimension_value
                           when 'feature' then u.feature = a.dimension_value
                           when 'model' then u.model = a.dimension_value
                           when 'api_key_id' then u.api_key_id::text = a.dimension_value else false end
  )
  select coalesce(jsonb_agg(s), '[]'::jsonb) into segments
  from (
    select b.side, b.model, b.feature, b.team, b.project, b.api_key_id,
           sum(b.mult * b.requests) / b.div as requests, sum(b.mult * b.cost_usd) / b.div as cost_usd,
           sum(b.mult * b.tokens) / b.div as tokens, sum(b.mult * b.errors) / b.div as errors,
           sum(b.mult * b.latency_sum_ms) / b.div as latency_sum, sum(b.mult * b.latency_count) / b.div as latency_count
    from b
    where b.mult > 0
    group by b.side, b.div, b.model, b.feature, b.team, b.project, b.api_key_id
  ) s;

  with s as (
    select * from jsonb_to_recordset(segments) as x(side text, model text, requests numeric, cost_usd numeric,
                                                   tokens numeric, errors numeric, latency_sum numeric,
                                                   latency_count numeric)
  ), t as (
    select coalesce(sum(s.requests) filter (where s.side = 'window'), 0) as rw,
           coalesce(sum(s.requests) filter (where s.side = 'baseline'), 0) as rb,
           coalesce(sum(s.cost_usd) filter (where s.side = 'window'), 0) as cw,
           coalesce(sum(s.cost_usd) filter (where s.side = 'baseline'), 0) as cb,
           sum(s.tokens) filter (where s.side = 'window') as tw, sum(s.tokens) filter (where s.side = 'baseline') as tb,
           sum(s.errors) filter (where s.side = 'window') as ew, sum(s.errors) filter (where s.side = 'baseline') as eb,
           sum(s.latency_sum) filter (where s.side = 'window') as lsw,
           sum(s.latency_sum) filter (where s.side = 'baseline') as lsb,
           sum(s.latency_count) filter (where s.side = 'window') as lcw,
           sum(s.latency_count) filter (where s.side = 'baseline') as lcb
    from s
  ), m as (
    select s.model,
           coalesce(sum(s.requests) filter (where s.side = 'window'), 0) as rw,
           coalesce(sum(s.requests) filter (where s.side = 'baseline'), 0) as rb,
           coalesce(sum(s.cost_usd) filter (where s.side = 'window'), 0) as cw,
           coalesce(sum(s.cost_usd) filter (where s.side = 'baseline'), 0) as cb
    from s group by s.model
  ), exact as (
    select t.*,
           case when t.rb > 0 then (t.rw - t.rb) * t.cb / t.rb else t.cw - t.cb end as volume,
           case when t.rb > 0
                then (select coalesce(sum((m.rw - t.rw * m.rb / t.rb)
                                          * coalesce(m.cb / nullif(m.rb, 0), m.cw / nullif(m.rw, 0), 0)), 0) from m)
                else 0 end as mix
    from t
  ), r as (
    select e.*, round(e.cw, 4) - round(e.cb, 4) as change, round(e.volume, 4) as volume_r, round(e.mix, 4) as mix_r
    from exact e
  )
  select jsonb_build_object(
           'window', private.evidence_usage(r.cw, r.rw, r.tw, r.ew, r.lsw, r.lcw, 0),
           'baseline', private.evidence_usage(r.cb, r.rb, r.tb, r.eb, r.lsb, r.lcb, 1),
           'change', jsonb_strip_nulls(jsonb_build_object(
             'cost_usd', trim_scale(r.change),
             'cost_pct', trim_scale(round(100 * r.change / nullif(round(r.cb, 4), 0), 1)),
             'requests', trim_scale(round(r.rw, 0) - round(r.rb, 1)),
             'requests_pct', trim_scale(round(100 * (r.rw - r.rb) / nullif(r.rb, 0), 1)),
             'cost_per_request_pct', trim_scale(round(100 * (r.cw / nullif(r.rw, 0) - r.cb / nullif(r.rb, 0))
                                                      / nullif(r.cb / nullif(r.rb, 0), 0), 1))))),
         jsonb_strip_nulls(jsonb_build_object(
           'total_usd', trim_scale(r.change),
           'volume_usd', trim_scale(r.volume_r),
           'mix_usd', trim_scale(r.mix_r),
           'rate_usd', trim_scale(r.change - r.volume_r - r.mix_r),
           'volume_share_pct', trim_scale(round(100 * r.volume_r / nullif(r.change, 0), 1)),
           'mix_share_pct', trim_scale(round(100 * r.mix_r / nullif(r.change, 0), 1)),
           'rate_share_pct', trim_scale(round(100 * (r.change - r.volume_r - r.mix_r) / nullif(r.change, 0), 1))))
  into usage_part, split
  from r;

  foreach dim in array array['model', 'feature', 'team', 'project', 'api_key'] loop
    continue when dim = replace(a.dimension, 'api_key_id', 'api_key');  -- one value: nothing to split
    by_dim := by_dim || jsonb_build_object(dim, private.anomaly_breakdown(segments, dim, 3));
  end loop;
  -- API keys by name and display prefix, where the caller may read them
  if by_dim ? 'api_key' then
    by_dim := jsonb_set(by_dim, '{api_key}', (
      select coalesce(jsonb_agg(case when k.id is null then e
                                     else e || jsonb_build_object('value', k.name, 'key_prefix', k.prefix) end
                                order by o), '[]'::jsonb)
      from jsonb_array_elements(by_dim -> 'api_key') with ordinality as p(e, o)
      left join public.api_keys k on k.id::text = p.e ->> 'value'));
  end if;

  return jsonb_build_object(
    'subject', 'anomaly',
    'anomaly', jsonb_strip_nulls(jsonb_build_object(
      'metric', a.metric, 'kind', a.kind, 'severity', a.severity, 'status', a.status, 'grain', a.grain,
      'dimension', a.dimension, 'dimension_value', a.dimension_value,
      'expected_per_bucket', trim_scale(round(a.expected_value, 4)),
      'actual_per_bucket', trim_scale(round(a.actual_value, 4)),
      'actual_over_expected', trim_scale(round(a.actual_value / nullif(a.expected_value, 0), 2)),
      'money_involved_usd', trim_scale(round(a.money_involved, 4)),
      'score_robust_sd', trim_scale(round(a.score, 1)))),
    'window', jsonb_build_object('start', private.evidence_time(ws), 'end', private.evidence_time(we),
                                 'buckets', round(extract(epoch from we - ws) / extract(epoch from step))),
    'baseline', jsonb_strip_nulls(jsonb_build_object(
      'windows', n, 'shifted_by', case a.grain when 'hour' then 'day' else 'week' end,
      'first_start', private.evidence_time(ws - shifts[n] * period),
      'last_end', private.evidence_time(we - shifts[1] * period))),
    'usage', usage_part,
    'cost_change_split', split,
    'cost_change_by', by_dim,
    'currency', 'USD', 'timezone', 'UTC');
end
$$;
comment on function public.anomaly_evidence(uuid) is
  'The figures an anomaly explanation may cite: window vs seasonal baseline usage, the cost change by model, '
  'feature, team, project and API key, and split into volume, mix and rate; null if unreadable.';
revoke all on function public.anomaly_evidence(uuid) from public;
grant execute on function public.anomaly_evidence(uuid) to authenticated, service_role;
revoke all on function private.anomaly_breakdown(jsonb, text, integer) from public;
grant execute on function private.anomaly_breakdown(jsonb, text, integer) to authenticated, service_role;
revoke all on function private.evidence_usage(numeric, numeric, numeric, numeric, numeric, numeric, integer) from public;
grant execute on function private.evidence_usage(numeric, numeric, numeric, numeric, numeric, numeric, integer)
  to authenticated, service_role;
revoke all on function private.evidence_time(timestamptz) from public;
grant execute on function private.evidence_time(timestamptz) to authenticated, service_role;
