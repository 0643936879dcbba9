-- Budget status, computed when read: current spend (rollups, see 20261122003200), what strict
-- reservations hold, the status (ok, warning, exceeded), the thresholds crossed and the projected
-- spend at period end. Nothing here is stored, so status follows ingestion as fast as the rollups'
-- read views do (they include rows committed a moment ago).

-- Status: exceeded at 100% of the amount, warning from the lowest threshold under 100%, else ok.
-- Projection: spend so far plus the run rate times what is left of the period; the rate is the
-- period's own while it is at least a day old, else the last 24 hours' (a young period says little).
create function private.budget_state(budget public.budgets, at timestamptz default now())
returns table (period_start timestamptz, period_end timestamptz, current_spend numeric, reserved numeric,
               remaining numeric, status text, crossed_thresholds integer[], projected_spend numeric)
language plpgsql stable rows 1 set search_path = '' set jit = off as $$
declare
  ps timestamptz;
  pe timestamptz;
  spend numeric;
  held numeric;
  rate numeric;
  lowest integer := (select min(t) from unnest(budget.alert_thresholds) t where t < 100);
begin
  select p.period_start, p.period_end into ps, pe from private.budget_current_period(budget, at) p;
  spend := private.budget_spend(budget, ps, pe);
  select coalesce(sum(h.amount_usd), 0) into held
    from private.budget_holds h where h.budget_id = budget.id and h.expires_at > at;
  if at - ps >= interval '1 day' then
    rate := spend / extract(epoch from at - ps);
  else
    rate := private.budget_spend(budget, at - interval '1 day', at) / 86400;
  end if;
  return query select
    ps, pe, round(spend, 6), round(held, 6), round(greatest(budget.amount - spend - held, 0), 6),
    case when spend >= budget.amount then 'exceeded'
         when lowest is not null and spend * 100 >= budget.amount * lowest then 'warning'
         else 'ok' end,
    array(select t from unnest(budget.alert_thresholds) t where spend * 100 >= budget.amount * t order by t),
    round(spend + rate * greatest(extract(epoch from pe - greatest(at, ps)), 0), 6);
end
$$;
comment on function private.budget_state(public.budgets, timestamptz) is
  'A budget''s current period, spend, reserved, remaining, status (ok|warning|exceeded), crossed thresholds '
  'and projected spend at period end, as of `at`.';
revoke all on function private.budget_state(public.budgets, timestamptz) from public;
grant execute on function private.budget_state(public.budgets, timestamptz) to authenticated, service_role;

-- What dashboards and the API read: every budget with its live status. RLS of public.budgets applies.
create view public.budget_status with (security_invoker = true) as
  select b.id, b.org_id, b.name, b.amount, b.currency, b.period, b.week_start, b.scope_type, b.scope_id,
         b.alert_thresholds, b.hard_limit, b.enabled, b.created_at, b.updated_at, s.period_start, s.period_end,
         s.current_spend, s.reserved, s.remaining, s.status, s.crossed_thresholds, s.projected_spend
    from public.budgets b
   cross join lateral private.budget_state(b) s;
comment on view public.budget_status is
  'Budgets with their live status: current period, spend (from the rollups), reserved, remaining, status, '
  'crossed thresholds and projected spend at period end.';
grant select on public.budget_status to authenticated;
