-- Alert events: raised by the budget evaluation (one per rule, budget, period and threshold crossed)
-- and by the metric rules (spend spike, error rate, latency: one per episode, resolved when the
-- condition clears). The unique dedup key of 20261122000800 makes "never two" hold however many
-- workers or retries race to raise the same event. Users acknowledge and resolve them.

alter table public.alert_events
  add column acknowledged_by uuid references auth.users (id) on delete set null,
  add column resolved_by uuid references auth.users (id) on delete set null;
create index alert_events_open_idx on public.alert_events (org_id, rule_id) where status <> 'resolved';

-- ---------------------------------------------------------------- acknowledge, resolve
-- Status moves forward only (open -> acknowledged -> resolved, or open -> resolved); the times and
-- the actor are stamped here, whatever the caller sent.
create function private.stamp_alert_event_status() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  if new.status = old.status then
    new.acknowledged_at := old.acknowledged_at;
    new.resolved_at := old.resolved_at;
    return new;
  end if;
  if old.status = 'resolved' or new.status = 'open' then
    raise exception 'status: an alert event moves from open to acknowledged to resolved, not from % to %',
      old.status, new.status using errcode = '22023', column = 'status';
  end if;
  if new.status = 'acknowledged' then
    new.acknowledged_at := now();
    new.acknowledged_by := (select auth.uid());
  else
    new.resolved_at := now();
    new.resolved_by := (select auth.uid());
  end if;
  return new;
end
$$;
comment on function private.stamp_alert_event_status() is
  'Trigger: alert events move open -> acknowledged -> resolved; stamps when and by whom.';
create trigger stamp_alert_event_status before update on public.alert_events
  for each row execute function private.stamp_alert_event_status();

-- ---------------------------------------------------------------- budgets
-- The last status each budget was seen in, so a change is broadcast once (dashboards follow it live).
create table private.budget_evaluations (
  budget_id uuid primary key references public.budgets (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  period_start timestamptz not null,
  status text not null,
  current_spend numeric not null,
  evaluated_at timestamptz not null default now()
);
alter table private.budget_evaluations enable row level security;
comment on table private.budget_evaluations is 'Last evaluated status per budget (the budgets job), to broadcast changes.';

-- Evaluate the enabled budgets that may have changed: raise one event per (budget alert rule, budget,
-- period, threshold crossed), broadcast status changes, resolve the events of periods that are over.
-- Idempotent: run it twice, or from three workers at once, and nothing is raised twice.
-- "May have changed": never evaluated, a new period, the budget or a budget rule edited, usage received
-- since (read through the (org_id, occurred_at) index over the last minutes), or five minutes since
-- the last look, which also catches late and re-priced events. Everything else is skipped, so the job
-- costs in proportion to the organizations that are active, not to all budgets.
create function private.evaluate_budgets() returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  b public.budgets;
  ps timestamptz;
  pe timestamptz;
  spend numeric;
  state text;
  lowest integer;
  raised integer := 0;
  n integer;
  evaluated integer := 0;
  resolved integer;
begin
  for b in
    select x.* from public.budgets x
      left join private.budget_evaluations e on e.budget_id = x.id
     where x.enabled
       and (e.budget_id is null
            or e.evaluated_at < now() - interval '5 minutes'
            or x.updated_at > e.evaluated_at
            or e.period_start <> (select p.period_start from private.budget_current_period(x) p)
            or exists (select 1 from public.alert_rules r
                        where r.org_id = x.org_id and r.type = 'budget_threshold' and r.updated_at > e.evaluated_at)
            or exists (select 1 from public.usage_records u
                        where u.org_id = x.org_id and u.occurred_at >= e.evaluated_at - interval '10 minutes'
                          and u.received_at >= e.evaluated_at))
     order by x.org_id, x.id
  loop
    select p.period_start, p.period_end into ps, pe from private.budget_current_period(b) p;
    spend := private.budget_spend(b, ps, pe);
    lowest := (select min(t) from unnest(b.alert_thresholds) t where t < 100);
    state := case when spend >= b.amount then 'exceeded'
                  when lowest is not null and spend * 100 >= b.amount * lowest then 'warning' else 'ok' end;
    evaluated := evaluated + 1;

    insert into public.alert_events (org_id, rule_id, budget_id, dedup_key, severity, title, details)
    select b.org_id, r.id, b.id, format('budget:%s:%s:%s:rule:%s', b.id, to_char(ps at time zone 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI"Z"'), t, r.id),
           case when t >= 100 then 'critical' when t >= 75 then 'warning' else 'info' end,
           format('Budget "%s" reached %s%% of $%s (%s)', b.name, t, b.amount, b.period),
           jsonb_build_object('kind', 'budget_threshold', 'budget_id', b.id, 'budget_name', b.name,
                              'threshold', t, 'amount', b.amount, 'current_spend', round(spend, 6),
                              'hard_limit', b.hard_limit, 'scope_type', b.scope_type, 'scope_id', b.scope_id,
                              'period', b.period, 'period_start', ps, 'period_end', pe)
      from unnest(b.alert_thresholds) t
      join public.alert_rules r on r.org_id = b.org_id and r.enabled and r.type = 'budget_threshold'
     where spend * 100 >= b.amount * t
       and (not (r.condition ? 'budget_ids') or r.condition -> 'budget_ids' ? b.id::text)
       and t >= coalesce((r.condition ->> 'min_threshold')::integer, 0)
    on conflict (org_id, dedup_key) do nothing;
    get diagnostics n = row_count;
    raised := raised + n;

    -- The status is broadcast when it (or the spend) changed; evaluated_at moves on every look.
    select count(*) into n from private.budget_evaluations e
     where e.budget_id = b.id and (e.status, e.period_start, e.current_spend) = (state, ps, round(spend, 6));
    insert into private.budget_evaluations as e (budget_id, org_id, period_start, status, current_spend)
    values (b.id, b.org_id, ps, state, round(spend, 6))
    on conflict (budget_id) do update
      set period_start = excluded.period_start, status = excluded.status, current_spend = excluded.current_spend,
          evaluated_at = now();
    if n = 0 then
      perform realtime.send(jsonb_build_object('id', b.id, 'name', b.name, 'status', state, 'amount', b.amount,
                                               'current_spend', round(spend, 6), 'period_start', ps,
                                               'period_end', pe),
                            'budget.status', private.org_topic(b.org_id, 'budgets'), true);
    end if;
  end loop;

  -- A threshold event belongs to its period: when the period is over, so is the alert.
  update public.alert_events e set status = 'resolved'
   where e.status <> 'resolved' and e.details ->> 'kind' = 'budget_threshold'
     and (e.details ->> 'period_end')::timestamptz <= now();
  get diagnostics resolved = row_count;
  return jsonb_build_object('budgets', evaluated, 'raised', raised, 'resolved', resolved,
                            'reservations_expired', private.sweep_budget_reservations());
end
$$;
comment on function private.evaluate_budgets() is
  'The budgets job: for budgets that may have changed, raise one alert event per (budget rule, budget, period, '
  'threshold crossed) and broadcast status changes; resolve events of past periods; sweep expired '
  'reservations. Idempotent.';

-- ---------------------------------------------------------------- metric rules
-- A metric rule's current value over its window, from the hourly rollups (windows are whole UTC hours:
-- the current one and as many before it as window_minutes reaches). Optional condition filters:
-- provider, model, team, project, feature.
create function private.alert_rule_measure(rule public.alert_rules, at timestamptz default now())
returns table (value numeric, baseline numeric, requests bigint)
language plpgsql stable rows 1 set search_path = '' set jit = off as $$
declare
  c jsonb := rule.condition;
  win integer := greatest(1, ceil(coalesce((c ->> 'window_minutes')::numeric, 60) / 60))::integer;
  since timestamptz := date_trunc('hour', at, 'UTC') - make_interval(hours => win - 1);
  base_hours integer := coalesce((c ->> 'baseline_hours')::integer, 24);
begin
  return query
  with rows as (
    select v.* from analytics.usage_hourly v
     where v.org_id = rule.org_id and v.bucket >= since - make_interval(hours => base_hours)
       and (c ->> 'provider' is null or v.provider = c ->> 'provider')
       and (c ->> 'model' is null or v.model = c ->> 'model')
       and (c ->> 'team' is null or v.team = c ->> 'team')
       and (c ->> 'project' is null or v.project = c ->> 'project')
       and (c ->> 'feature' is null or v.feature = c ->> 'feature')
  )
  select case rule.type
           when 'spend_spike' then coalesce(sum(r.cost_usd) filter (where r.bucket >= since), 0)
           when 'error_rate' then 100.0 * coalesce(sum(r.errors) filter (where r.bucket >= since), 0)
                                  / nullif(sum(r.requests) filter (where r.bucket >= since), 0)
           when 'latency' then analytics.latency_percentile(
                                 analytics.merge_latency(r.latency_histogram) filter (where r.bucket >= since),
                                 coalesce((c ->> 'percentile')::float8, 95) / 100)::numeric
         end,
         -- spend_spike's baseline: mean spend per window over the baseline hours before the window
         coalesce(sum(r.cost_usd) filter (where r.bucket < since), 0) / base_hours * win,
         coalesce(sum(r.requests) filter (where r.bucket >= since), 0)::bigint
    from rows r;
end
$$;
comment on function private.alert_rule_measure(public.alert_rules, timestamptz) is
  'Current value of a spend_spike (USD in window), error_rate (% of requests) or latency (ms at percentile) rule, '
  'with the spend baseline per window and the request count.';

-- Whether a measured rule fires. Defaults: spike 3x baseline and at least $1; error rate 10% of at
-- least 20 requests; latency p95 over 5,000 ms with at least 20 requests.
create function private.alert_rule_fires(rule public.alert_rules, value numeric, baseline numeric, requests bigint)
returns boolean
language sql immutable set search_path = '' as $$
  select coalesce(case rule.type
    when 'spend_spike' then value >= coalesce((rule.condition ->> 'min_spend_usd')::numeric, 1)
                            and value >= coalesce((rule.condition ->> 'factor')::numeric, 3) * baseline
    when 'error_rate' then requests >= coalesce((rule.condition ->> 'min_requests')::bigint, 20)
                           and value >= coalesce((rule.condition ->> 'threshold_pct')::numeric, 10)
    when 'latency' then requests >= coalesce((rule.condition ->> 'min_requests')::bigint, 20)
                        and value >= coalesce((rule.condition ->> 'threshold_ms')::numeric, 5000)
  end, false)
$$;
comment on function private.alert_rule_fires(public.alert_rules, numeric, numeric, bigint) is
  'True when a spend_spike, error_rate or latency rule''s measured value breaches its condition.';

-- Evaluate every enabled metric rule: raise one event when its condition starts to hold (none while an
-- event of the rule is still unresolved), resolve that event when the condition clears.
create function private.evaluate_alert_rules(at timestamptz default now()) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  r public.alert_rules;
  m record;
  firing boolean;
  raised integer := 0;
  resolved integer := 0;
  n integer;
begin
  for r in select * from public.alert_rules x
            where x.enabled and x.type in ('spend_spike', 'error_rate', 'latency') order by x.id loop
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
  end loop;
  return jsonb_build_object('raised', raised, 'resolved', resolved);
end
$$;
comment on function private.evaluate_alert_rules(timestamptz) is
  'Raise an event when a spend_spike, error_rate or latency rule starts firing (one per episode) and '
  'resolve it when the condition clears.';

revoke all on function private.evaluate_budgets(), private.alert_rule_measure(public.alert_rules, timestamptz),
  private.alert_rule_fires(public.alert_rules, numeric, numeric, bigint), private.evaluate_alert_rules(timestamptz)
  from public;
grant execute on function private.evaluate_budgets(), private.evaluate_alert_rules(timestamptz) to service_role;
