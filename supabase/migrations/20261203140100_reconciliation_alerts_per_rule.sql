-- Drift rules are evaluated one at a time, each in its own subtransaction: a rule the evaluation cannot
-- read (written before its condition was checked) is skipped with a warning and named in the result,
-- and every other organization's rules still evaluate. A window without any reconciled day says nothing
-- about the gap (a broken admin key stops the reports), so an open event stays open until days come back.

-- One rule: 'raised', 'resolved' or null (nothing changed).
create function private.evaluate_reconciliation_rule(rule public.alert_rules, at timestamptz default now())
returns text
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  d record;
  firing boolean;
  n integer;
begin
  select * into d from private.reconciliation_drift(rule, at);
  if d.days = 0 then
    return null;  -- stale: no reconciled day in the window
  end if;
  firing := coalesce(abs(d.gap_usd) >= coalesce((rule.condition ->> 'min_gap_usd')::numeric, 1)
                     and d.drift_pct >= coalesce((rule.condition ->> 'threshold_pct')::numeric, 5), false);
  if firing then
    insert into public.alert_events (org_id, rule_id, dedup_key, severity, title, details)
    select rule.org_id, rule.id,
           format('reconciliation_drift:%s:%s', rule.id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"')),
           coalesce(rule.condition ->> 'severity', 'warning'),
           format('%s: billed $%s vs tracked $%s over %s days, a gap of $%s (%s%%)', rule.name, round(d.billed_usd, 2),
                  round(d.tracked_usd, 2), d.days, round(d.gap_usd, 2), round(d.drift_pct, 1)),
           jsonb_build_object('kind', 'reconciliation_drift', 'gap_usd', round(d.gap_usd, 6),
                              'billed_usd', round(d.billed_usd, 6), 'tracked_usd', round(d.tracked_usd, 6),
                              'drift_pct', d.drift_pct, 'days', d.days, 'causes', d.causes, 'condition', rule.condition)
     where not exists (select 1 from public.alert_events e
                        where e.org_id = rule.org_id and e.rule_id = rule.id and e.status <> 'resolved')
    on conflict (org_id, dedup_key) do nothing;
    get diagnostics n = row_count;
    return case when n > 0 then 'raised' end;
  end if;
  update public.alert_events e set status = 'resolved'
   where e.org_id = rule.org_id and e.rule_id = rule.id and e.status <> 'resolved';
  get diagnostics n = row_count;
  return case when n > 0 then 'resolved' end;
end
$$;
comment on function private.evaluate_reconciliation_rule(public.alert_rules, timestamptz) is
  'Raise or resolve one reconciliation_drift rule''s event; leave it as it is while its window has no reconciled day.';

create or replace function private.evaluate_reconciliation_alerts(at timestamptz default now()) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  r public.alert_rules;
  outcome text;
  raised integer := 0;
  resolved integer := 0;
  failed jsonb := '[]';
begin
  for r in select * from public.alert_rules x where x.enabled and x.type = 'reconciliation_drift' order by x.id loop
    begin
      outcome := private.evaluate_reconciliation_rule(r, at);
      raised := raised + case when outcome = 'raised' then 1 else 0 end;
      resolved := resolved + case when outcome = 'resolved' then 1 else 0 end;
    exception when others then
      raise warning 'reconciliation_drift rule % of organization % skipped: %: %', r.id, r.org_id, sqlstate, sqlerrm;
      failed := failed || jsonb_build_object('rule_id', r.id, 'org_id', r.org_id, 'sqlstate', sqlstate,
                                             'message', left(sqlerrm, 300));
    end;
  end loop;
  return jsonb_build_object('raised', raised, 'resolved', resolved, 'failed', failed);
end
$$;
comment on function private.evaluate_reconciliation_alerts(timestamptz) is
  'Raise one event per reconciliation_drift rule while billed and tracked drift apart past its threshold; '
  'resolve it when they agree again; a rule that fails is skipped and listed under failed.';

revoke all on function private.evaluate_reconciliation_rule(public.alert_rules, timestamptz) from public;
grant execute on function private.evaluate_reconciliation_rule(public.alert_rules, timestamptz) to service_role;
