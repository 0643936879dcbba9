-- Provider health from our own rollups: per provider and model (model '*' = the whole provider),
-- over the last hour and the last day, the p50/p95 latency and the shares of errors, rate limits and
-- timeouts across every organization's calls. Refreshed every minute into a small table, so routing
-- and the registry read a few rows instead of the rollups. A `provider_degraded` alert rule fires when
-- a provider (or one of its models) crosses its thresholds.
--
-- Windows are whole hourly buckets: '1h' is the current hour and the one before (60 to 120 minutes of
-- calls), '24h' the current hour and the 24 before. Rows drawn from fewer organizations than
-- private.provider_health_settings.min_organizations are kept for the alert rules of those
-- organizations but not shown to others: one customer's error rate is not another's to read.

create table private.provider_health_settings (
  singleton boolean primary key default true constraint only_one_row check (singleton),
  min_organizations integer not null default 1 constraint min_organizations_is_positive check (min_organizations >= 1)
);
alter table private.provider_health_settings enable row level security;
insert into private.provider_health_settings default values;
comment on table private.provider_health_settings is
  'min_organizations: how many organizations a health row must be drawn from before all signed-in users and '
  'routing read it (1 suits a single-tenant install; a shared deployment raises it).';

create table private.provider_health (
  provider text not null,
  model text not null,
  window_name text not null constraint window_is_known check (window_name in ('1h', '24h')),
  requests bigint not null,
  organizations integer not null,
  -- every call that did not succeed (errors, rate limits and timeouts alike), as the rollups count errors
  error_share numeric(6, 5) not null,
  rate_limited_share numeric(6, 5) not null,
  timeout_share numeric(6, 5) not null,
  p50_ms integer,
  p95_ms integer,
  org_ids uuid[] not null,
  computed_at timestamptz not null default now(),
  primary key (provider, model, window_name)
);
alter table private.provider_health enable row level security;
comment on table private.provider_health is
  'Latency percentiles and error, rate-limit and timeout shares per provider and model (''*'' = all its models), '
  'per window, across organizations; refreshed every minute by private.refresh_provider_health().';

create policy "signed-in users read health drawn from enough organizations" on private.provider_health
  for select to authenticated
  using (organizations >= (select s.min_organizations from private.provider_health_settings s));
create policy "signed-in users read the health settings" on private.provider_health_settings
  for select to authenticated using (true);
revoke all on private.provider_health, private.provider_health_settings from public, anon, authenticated;
grant select (provider, model, window_name, requests, organizations, error_share, rate_limited_share, timeout_share,
              p50_ms, p95_ms, computed_at) on private.provider_health to authenticated;
grant select on private.provider_health_settings to authenticated;
grant select on private.provider_health, private.provider_health_settings to service_role;

create view public.provider_health with (security_invoker = true) as
  select h.provider, h.model, h.window_name, h.requests, h.organizations, h.error_share, h.rate_limited_share,
         h.timeout_share, h.p50_ms, h.p95_ms, h.computed_at
    from private.provider_health h;
comment on view public.provider_health is
  'Provider and model health over the last hour and day (read-only; rows from too few organizations hidden).';
grant select on public.provider_health to authenticated, service_role;

-- ---------------------------------------------------------------- refresh
create function private.refresh_provider_health(at timestamptz default now()) returns integer
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  n integer;
begin
  delete from private.provider_health;
  -- analytics.usage_hourly is exact up to the last committed row (materialized buckets + raw tail)
  insert into private.provider_health (provider, model, window_name, requests, organizations, error_share,
                                       rate_limited_share, timeout_share, p50_ms, p95_ms, org_ids, computed_at)
  with health_rows as materialized (
    select w.window_name, v.org_id, v.provider, v.model, v.requests, v.errors, v.rate_limited, v.timeouts,
           v.latency_histogram
      from analytics.usage_hourly v
     cross join (values ('1h', 1), ('24h', 24)) w (window_name, hours)
     where v.bucket >= date_trunc('hour', at, 'UTC') - make_interval(hours => w.hours)
       and v.bucket <= at
  )
  select r.provider, coalesce(r.model, '*'), r.window_name, sum(r.requests), count(distinct r.org_id),
         round(sum(r.errors)::numeric / sum(r.requests), 5), round(sum(r.rate_limited)::numeric / sum(r.requests), 5),
         round(sum(r.timeouts)::numeric / sum(r.requests), 5),
         analytics.latency_percentile(analytics.merge_latency(r.latency_histogram), 0.5),
         analytics.latency_percentile(analytics.merge_latency(r.latency_histogram), 0.95),
         array_agg(distinct r.org_id), at
    from health_rows r
   group by grouping sets ((r.window_name, r.provider, r.model), (r.window_name, r.provider))
  having sum(r.requests) > 0;
  get diagnostics n = row_count;
  return n;
end
$$;
comment on function private.refresh_provider_health(timestamptz) is
  'Recompute private.provider_health from the hourly rollups (windows 1h and 24h); returns the rows written.';
revoke all on function private.refresh_provider_health(timestamptz) from public;
grant execute on function private.refresh_provider_health(timestamptz) to service_role;

-- ---------------------------------------------------------------- degraded-provider alerts
-- Extend the alert rule types by whatever the constraint allows now plus provider_degraded, so this
-- migration composes with others that add their own types.
do $$
declare
  allowed text[];
begin
  -- the definition reads either `type in ('a', 'b')` (quoted names) or `type = any ('{a,b}'::text[])`
  select array_agg(distinct m[1] order by m[1]) into allowed
    from pg_catalog.pg_constraint c,
         regexp_matches(regexp_replace(pg_catalog.pg_get_constraintdef(c.oid), '^.*?\(\(type\s*=\s*any\s*\(', '', 'i'),
                        '([a-z][a-z_]*)', 'g') m
   where c.conrelid = 'public.alert_rules'::regclass and c.conname = 'type_is_known'
     and m[1] not in ('array', 'text', 'type', 'any');
  allowed := array(select distinct unnest(allowed || array['provider_degraded']) order by 1);
  alter table public.alert_rules drop constraint type_is_known;
  execute format('alter table public.alert_rules add constraint type_is_known check (type = any (%L::text[]))',
                 allowed);
end
$$;

-- Condition of a provider_degraded rule: {"provider": "openai", "model": "gpt-4o" (default '*', the whole
-- provider), "window": "1h"|"24h" (default 1h), "max_error_pct": 10, "max_rate_limited_pct": 10,
-- "max_p95_ms": null (latency not checked), "min_requests": 20, "severity": "warning"}.
create function private.evaluate_provider_alerts(at timestamptz default now()) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  raised integer;
  resolved integer;
begin
  with rules as (
    select r.*, h.requests, h.error_share, h.rate_limited_share, h.p95_ms,
           coalesce(h.requests >= coalesce((r.condition ->> 'min_requests')::bigint, 20)
             and (h.error_share * 100 >= coalesce((r.condition ->> 'max_error_pct')::numeric, 10)
                  or h.rate_limited_share * 100 >= coalesce((r.condition ->> 'max_rate_limited_pct')::numeric, 10)
                  or h.p95_ms >= (r.condition ->> 'max_p95_ms')::numeric), false) as firing
      from public.alert_rules r
      left join private.provider_health h
        on h.provider = r.condition ->> 'provider' and h.model = coalesce(r.condition ->> 'model', '*')
       and h.window_name = coalesce(r.condition ->> 'window', '1h')
       -- a rule sees health drawn from enough organizations, or from its own organization's calls
       and (h.organizations >= (select s.min_organizations from private.provider_health_settings s)
            or r.org_id = any (h.org_ids))
     where r.enabled and r.type = 'provider_degraded'
  ), opened as (
    insert into public.alert_events (org_id, rule_id, dedup_key, severity, title, details)
    select x.org_id, x.id, format('provider_degraded:%s:%s', x.id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"')),
           coalesce(x.condition ->> 'severity', 'warning'),
           format('%s: %s%s degraded: %s%% errors, %s%% rate-limited, p95 %s ms over %s requests', x.name,
                  x.condition ->> 'provider', coalesce(' ' || nullif(x.condition ->> 'model', '*'), ''),
                  round(x.error_share * 100, 1), round(x.rate_limited_share * 100, 1), coalesce(x.p95_ms::text, '?'),
                  x.requests),
           jsonb_build_object('kind', 'provider_degraded', 'provider', x.condition ->> 'provider',
                              'model', coalesce(x.condition ->> 'model', '*'), 'requests', x.requests,
                              'error_share', x.error_share, 'rate_limited_share', x.rate_limited_share,
                              'p95_ms', x.p95_ms, 'condition', x.condition)
      from rules x
     where x.firing
       and not exists (select 1 from public.alert_events e
                        where e.org_id = x.org_id and e.rule_id = x.id and e.status <> 'resolved')
    on conflict (org_id, dedup_key) do nothing
    returning 1
  ), closed as (
    update public.alert_events e set status = 'resolved', resolved_at = at
      from rules x
     where not x.firing and e.org_id = x.org_id and e.rule_id = x.id and e.status <> 'resolved'
    returning 1
  )
  select (select count(*) from opened), (select count(*) from closed) into raised, resolved;
  return jsonb_build_object('raised', raised, 'resolved', resolved);
end
$$;
comment on function private.evaluate_provider_alerts(timestamptz) is
  'Raise one event per provider_degraded rule while its provider or model crosses an error, rate-limit or p95 '
  'threshold (from private.provider_health); resolve it when health returns.';
revoke all on function private.evaluate_provider_alerts(timestamptz) from public;
grant execute on function private.evaluate_provider_alerts(timestamptz) to service_role;

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-provider-health', '* * * * *',
   'select private.refresh_provider_health(); select private.evaluate_provider_alerts();',
   'Recompute provider health from the rollups and raise or resolve provider_degraded alerts.');
select private.schedule_periodic_jobs();
