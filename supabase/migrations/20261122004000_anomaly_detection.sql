-- Anomaly detection (worker job `anomalies`): what an incident is keyed by, the alerts anomaly rules
-- raise through the outbox, and the listing the anomalies function answers.

-- ---------------------------------------------------------------- incidents
alter table public.anomalies
  add column grain text not null default 'hour' constraint grain_is_hour_or_day check (grain in ('hour', 'day')),
  add column kind text not null default 'spike' constraint kind_is_known check (kind in ('spike', 'level_shift')),
  add column score numeric,
  add column updated_at timestamptz not null default now();
comment on column public.anomalies.grain is 'The series the incident was found in: hourly or daily buckets.';
comment on column public.anomalies.kind is 'spike (back to normal within the baseline window) or level_shift.';
comment on column public.anomalies.score is 'Peak deviation from the seasonal baseline, in robust standard deviations.';
-- One anomaly per incident: the job upserts on the series and the incident's first bucket.
create unique index anomalies_one_per_incident_idx
  on public.anomalies (org_id, metric, dimension, coalesce(dimension_value, ''), grain, window_start);
create index anomalies_open_idx on public.anomalies (org_id) where status = 'open';

-- ---------------------------------------------------------------- alerts
-- Raise one alert event per (enabled anomaly rule, open anomaly at or above the rule's min_severity,
-- optionally narrowed by metric and dimension); resolve it when the anomaly closes. Inserting into
-- alert_events enqueues the deliveries (outbox), and the dedup key makes reruns raise nothing twice.
create function private.sync_anomaly_alerts(org uuid) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  raised integer;
  resolved integer;
begin
  with ranked as (
    select a.*, array_position(array['low', 'medium', 'high', 'critical'], a.severity) as level
    from public.anomalies a where a.org_id = org and a.status = 'open'
  )
  insert into public.alert_events (org_id, rule_id, dedup_key, severity, title, details)
  select r.org_id, r.id, format('anomaly:%s:%s', r.id, a.id),
         case when a.severity = 'critical' then 'critical' else 'warning' end,
         format('%s: %s anomaly in %s of %s %s (expected %s, actual %s)', r.name, a.severity, a.metric, a.dimension,
                coalesce(a.dimension_value, ''), round(a.expected_value, 4), round(a.actual_value, 4)),
         jsonb_build_object('kind', 'anomaly', 'anomaly_id', a.id, 'metric', a.metric, 'dimension', a.dimension,
                            'dimension_value', a.dimension_value, 'window_start', a.window_start,
                            'money_involved', a.money_involved, 'severity', a.severity)
  from public.alert_rules r
  join ranked a on a.level >= coalesce(array_position(array['low', 'medium', 'high', 'critical'],
                                                      r.condition ->> 'min_severity'), 2)
               and (r.condition ->> 'metric' is null or r.condition ->> 'metric' = a.metric)
               and (r.condition ->> 'dimension' is null or r.condition ->> 'dimension' = a.dimension)
  where r.org_id = org and r.enabled and r.type = 'anomaly'
  on conflict (org_id, dedup_key) do nothing;
  get diagnostics raised = row_count;
  update public.alert_events e set status = 'resolved'
   where e.org_id = org and e.status <> 'resolved' and e.details ->> 'kind' = 'anomaly'
     and exists (select 1 from public.anomalies a
                  where a.id = (e.details ->> 'anomaly_id')::uuid and a.status = 'closed');
  get diagnostics resolved = row_count;
  return jsonb_build_object('raised', raised, 'resolved', resolved);
end
$$;
comment on function private.sync_anomaly_alerts(uuid) is
  'Raise one alert event per anomaly rule and open anomaly it covers; resolve them when the anomaly closes.';
revoke all on function private.sync_anomaly_alerts(uuid) from public;
grant execute on function private.sync_anomaly_alerts(uuid) to service_role;

-- ---------------------------------------------------------------- listing
-- What GET /functions/v1/anomalies answers, run as the caller: RLS keeps other organizations out.
create function public.anomaly_list(org uuid default null, status text default null, metric text default null,
                                    dimension text default null, severity text default null,
                                    since timestamptz default null, max_rows integer default 100)
returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object('data', coalesce(jsonb_agg(to_jsonb(x) order by x.window_start desc), '[]'::jsonb))
  from (
    select a.id, a.org_id, a.metric, a.kind, a.grain, a.severity, a.dimension, a.dimension_value,
           a.window_start, a.window_end, a.expected_value, a.actual_value, a.money_involved, a.score, a.status,
           a.details, a.created_at, a.updated_at
    from public.anomalies a
    where (org is null or a.org_id = org)
      and (anomaly_list.status is null or a.status = anomaly_list.status)
      and (anomaly_list.metric is null or a.metric = anomaly_list.metric)
      and (anomaly_list.dimension is null or a.dimension = anomaly_list.dimension)
      and (anomaly_list.severity is null or a.severity = anomaly_list.severity)
      and (since is null or a.window_start >= since)
    order by a.window_start desc
    limit least(greatest(max_rows, 1), 1000)
  ) x
$$;
comment on function public.anomaly_list(uuid, text, text, text, text, timestamptz, integer) is
  'Anomalies the caller may read, newest first, filtered; {"data": [...]}.';
revoke all on function public.anomaly_list(uuid, text, text, text, text, timestamptz, integer) from public;
grant execute on function public.anomaly_list(uuid, text, text, text, text, timestamptz, integer)
  to authenticated, service_role;
