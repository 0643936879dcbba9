-- Drift alerts: a `reconciliation_drift` rule fires while the gap between what the providers billed and
-- what we tracked, over the last reconciled days, passes its threshold; it resolves when the gap closes
-- (a re-price, a fixed integration). Events go through the alert outbox like every other rule's.

-- ---------------------------------------------------------------- the rule type
-- Whatever the constraint allows now plus reconciliation_drift, so this composes with migrations that add
-- their own types.
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
  allowed := array(select distinct unnest(allowed || array['reconciliation_drift']) order by 1);
  alter table public.alert_rules drop constraint type_is_known;
  execute format('alter table public.alert_rules add constraint type_is_known check (type = any (%L::text[]))',
                 allowed);
end
$$;

-- ---------------------------------------------------------------- the measure
-- Condition of a reconciliation_drift rule: {"threshold_pct": 5, "min_gap_usd": 1, "window_days": 7,
-- "provider": null, "canonical_model": null, "causes": null (every cause: the whole gap; or a list such as
-- ["untracked_traffic", "unexplained"]), "severity": "warning"}. The window is the last window_days UTC
-- days before `at`.
create function private.reconciliation_drift(rule public.alert_rules, at timestamptz default now())
returns table (gap_usd numeric, billed_usd numeric, tracked_usd numeric, drift_pct numeric, days integer,
               causes jsonb)
language sql stable rows 1 set search_path = '' as $$
  with c as (select rule.condition as j,
                    (at at time zone 'UTC')::date as until,
                    (at at time zone 'UTC')::date - coalesce((rule.condition ->> 'window_days')::integer, 7) as since),
  d as (
    select r.* from private.reconciliation_daily r, c
     where r.org_id = rule.org_id and r.day >= c.since and r.day < c.until
       and (c.j ->> 'provider' is null or r.provider = c.j ->> 'provider')
       and (c.j ->> 'canonical_model' is null or r.canonical_model = c.j ->> 'canonical_model')
  ), k as (
    select r.cause, sum(r.amount_usd) as amount
      from private.reconciliation_causes r, c
     where r.org_id = rule.org_id and r.day >= c.since and r.day < c.until
       and (c.j ->> 'provider' is null or r.provider = c.j ->> 'provider')
       and (c.j ->> 'canonical_model' is null or r.canonical_model = c.j ->> 'canonical_model')
       and (not (c.j ? 'causes') or jsonb_typeof(c.j -> 'causes') <> 'array' or c.j -> 'causes' ? r.cause)
     group by r.cause
  )
  select coalesce((select sum(k.amount) from k), 0),
         coalesce((select sum(d.billed_cost_usd) from d), 0),
         coalesce((select sum(d.tracked_cost_usd) from d), 0),
         round(100 * abs(coalesce((select sum(k.amount) from k), 0))
               / nullif((select sum(d.billed_cost_usd) from d), 0), 4),
         (select count(distinct d.day)::integer from d),
         coalesce((select jsonb_object_agg(k.cause, round(k.amount, 6)) from k), '{}'::jsonb)
$$;
comment on function private.reconciliation_drift(public.alert_rules, timestamptz) is
  'A reconciliation_drift rule''s gap (its causes, default all) over its window, against the billed cost, in percent.';

-- Raise one event per rule while its drift is at or past threshold_pct and min_gap_usd (none while an
-- event of the rule is open), resolve it when the drift falls back.
create function private.evaluate_reconciliation_alerts(at timestamptz default now()) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  raised integer;
  resolved integer;
begin
  with rules as (
    select r.*, d.gap_usd, d.billed_usd, d.tracked_usd, d.drift_pct, d.days, d.causes,
           coalesce(abs(d.gap_usd) >= coalesce((r.condition ->> 'min_gap_usd')::numeric, 1)
                    and d.drift_pct >= coalesce((r.condition ->> 'threshold_pct')::numeric, 5), false) as firing
      from public.alert_rules r
     cross join lateral private.reconciliation_drift(r, at) d
     where r.enabled and r.type = 'reconciliation_drift'
  ), opened as (
    insert into public.alert_events (org_id, rule_id, dedup_key, severity, title, details)
    select x.org_id, x.id, format('reconciliation_drift:%s:%s', x.id, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"')),
           coalesce(x.condition ->> 'severity', 'warning'),
           format('%s: billed $%s vs tracked $%s over %s days, a gap of $%s (%s%%)', x.name, round(x.billed_usd, 2),
                  round(x.tracked_usd, 2), x.days, round(x.gap_usd, 2), round(x.drift_pct, 1)),
           jsonb_build_object('kind', 'reconciliation_drift', 'gap_usd', round(x.gap_usd, 6),
                              'billed_usd', round(x.billed_usd, 6), 'tracked_usd', round(x.tracked_usd, 6),
                              'drift_pct', x.drift_pct, 'days', x.days, 'causes', x.causes, 'condition', x.condition)
      from rules x
     where x.firing
       and not exists (select 1 from public.alert_events e
                        where e.org_id = x.org_id and e.rule_id = x.id and e.status <> 'resolved')
    on conflict (org_id, dedup_key) do nothing
    returning 1
  ), closed as (
    update public.alert_events e set status = 'resolved'
      from rules x
     where not x.firing and e.org_id = x.org_id and e.rule_id = x.id and e.status <> 'resolved'
    returning 1
  )
  select (select count(*) from opened), (select count(*) from closed) into raised, resolved;
  return jsonb_build_object('raised', raised, 'resolved', resolved);
end
$$;
comment on function private.evaluate_reconciliation_alerts(timestamptz) is
  'Raise one event per reconciliation_drift rule while billed and tracked drift apart past its threshold; '
  'resolve it when they agree again.';

revoke all on function private.reconciliation_drift(public.alert_rules, timestamptz),
  private.evaluate_reconciliation_alerts(timestamptz) from public;
grant execute on function private.reconciliation_drift(public.alert_rules, timestamptz),
  private.evaluate_reconciliation_alerts(timestamptz) to service_role;
