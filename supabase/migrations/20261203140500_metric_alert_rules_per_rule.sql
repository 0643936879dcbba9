-- Metric alert rules (spend spike, error rate, latency) evaluate one at a time in their own subtransaction:
-- members may write alert_rules straight through SQL, and a condition the measure cannot read (a quoted
-- number, an unknown severity) would otherwise fail the evaluation of every organization's rules. A
-- failing rule is skipped with a warning and listed under failed.

create or replace function private.evaluate_alert_rules(at timestamptz default now()) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  r public.alert_rules;
  m record;
  firing boolean;
  raised integer := 0;
  resolved integer := 0;
  n integer;
  failed jsonb := '[]';
begin
  for r in select * from public.alert_rules x
            where x.enabled and x.type in ('spend_spike', 'error_rate', 'latency') order by x.id loop
    begin
      select * into m from private.alert_rule_measure(r, at);
      firing := private.alert_rule_fires(r, m.value, m.baseline, m.requests);
      if firing then
        insert into public.alert_events (org_id, rule_id, dedup_key, severity, title, details)
        select r.org_id, r.id, format('%s:%s:%s', r.type, r.id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24"Z"')),
               coalesce(r.condition ->> 'severity', 'warning'),
               format('%s: %s', r.name, case r.type
                 when 'spend_spike' then format('$%s spent in the window, %sx the usual $%s', round(m.value, 2),
                                                round(m.value / nullif(m.baseline, 0), 1), round(m.baseline, 2))
                 when 'error_rate' then format('%s%% of %s requests failed', round(m.value, 1), m.requests)
                 else format('p%s latency %s ms', coalesce(r.condition ->> 'percentile', '95'), m.value) end),
               jsonb_build_object('kind', r.type, 'value', m.value, 'baseline', m.baseline, 'requests', m.requests,
                                  'condition', r.condition)
         where not exists (select 1 from public.alert_events e
                            where e.org_id = r.org_id and e.rule_id = r.id and e.status <> 'resolved')
        on conflict (org_id, dedup_key) do nothing;
        get diagnostics n = row_count;
        raised := raised + n;
      else
        update public.alert_events e set status = 'resolved'
         where e.org_id = r.org_id and e.rule_id = r.id and e.status <> 'resolved';
        get diagnostics n = row_count;
        resolved := resolved + n;
      end if;
    exception when others then
      raise warning '% rule % of organization % skipped: %: %', r.type, r.id, r.org_id, sqlstate, sqlerrm;
      failed := failed || jsonb_build_object('rule_id', r.id, 'org_id', r.org_id, 'sqlstate', sqlstate,
                                             'message', left(sqlerrm, 300));
    end;
  end loop;
  return jsonb_build_object('raised', raised, 'resolved', resolved, 'failed', failed);
end
$$;
comment on function private.evaluate_alert_rules(timestamptz) is
  'Raise an event when a spend_spike, error_rate or latency rule starts firing (one per episode) and '
  'resolve it when the condition clears; a rule that fails is skipped and listed under failed.';
