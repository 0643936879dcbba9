-- Provider degradation rules evaluate one at a time in their own subtransaction: a condition the
-- evaluation cannot read (written by a member straight through SQL) is skipped with a warning and listed
-- under failed, instead of failing every organization's provider alerts (and, in the scheduled command,
-- the health refresh that runs with them).

create or replace function private.evaluate_provider_alerts(at timestamptz default now()) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  rule public.alert_rules;
  n_raised integer;
  n_resolved integer;
  raised integer := 0;
  resolved integer := 0;
  failed jsonb := '[]';
begin
  for rule in select * from public.alert_rules x
               where x.enabled and x.type = 'provider_degraded' order by x.id loop
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
         where r.id = rule.id
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
      select (select count(*) from opened), (select count(*) from closed) into n_raised, n_resolved;
      raised := raised + n_raised;
      resolved := resolved + n_resolved;
    exception when others then
      raise warning 'provider_degraded rule % of organization % skipped: %: %', rule.id, rule.org_id, sqlstate, sqlerrm;
      failed := failed || jsonb_build_object('rule_id', rule.id, 'org_id', rule.org_id, 'sqlstate', sqlstate,
                                             'message', left(sqlerrm, 300));
    end;
  end loop;
  return jsonb_build_object('raised', raised, 'resolved', resolved, 'failed', failed);
end
$$;
comment on function private.evaluate_provider_alerts(timestamptz) is
  'Raise one event per provider_degraded rule while its provider or model crosses an error, rate-limit or p95 '
  'threshold (from private.provider_health); resolve it when health returns; a rule that fails is skipped and '
  'listed under failed.';
