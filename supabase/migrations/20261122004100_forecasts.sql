-- Spend forecasts (worker job `forecasts`): month-end spend per organization and period-end spend per
-- budget, with 80% and 95% intervals and the date a budget runs out; forecast-overrun alerts; the
-- report GET /functions/v1/forecast answers.

-- ---------------------------------------------------------------- forecasts
create table public.spend_forecasts (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  budget_id uuid references public.budgets (id) on delete cascade,
  period_start timestamptz not null,
  period_end timestamptz not null,
  spent_to_date numeric not null,
  forecast numeric not null,
  lower_80 numeric not null,
  upper_80 numeric not null,
  lower_95 numeric not null,
  upper_95 numeric not null,
  budget_amount numeric,
  overrun_probability numeric constraint overrun_probability_is_a_probability
    check (overrun_probability between 0 and 1),
  exhaustion_date date,
  method text not null,
  history jsonb not null default '[]',
  daily_forecast jsonb not null default '[]',
  generated_at timestamptz not null default now(),
  constraint intervals_are_nested check (lower_95 <= lower_80 and lower_80 <= upper_80 and upper_80 <= upper_95),
  constraint period_end_is_after_start check (period_end > period_start)
);
comment on table public.spend_forecasts is
  'Latest forecast of period-end spend: the organization''s month (budget_id null) or a budget''s period.';
comment on column public.spend_forecasts.exhaustion_date is
  'The day the expected spend reaches the budget amount within the period; null if it does not.';
comment on column public.spend_forecasts.daily_forecast is 'Chart-ready: [{day, expected, lower_80, upper_80}].';
create unique index spend_forecasts_one_per_period_idx
  on public.spend_forecasts (org_id, coalesce(budget_id, '00000000-0000-0000-0000-000000000000'::uuid), period_start);
-- Forecasts are budget information: whoever may read budgets may read them; only the job writes them.
select private.create_tenant_policies('public.spend_forecasts', 'budgets', writable => false);
grant select on public.spend_forecasts to authenticated;

-- ---------------------------------------------------------------- alerts
-- One event per (enabled forecast_overrun rule, forecast, period) when the forecast is over the budget
-- (condition.probability: the overrun probability that fires, default 0.5; for the organization's own
-- forecast, condition.amount gives the monthly amount). Resolved when the forecast comes back under.
create function private.sync_forecast_alerts(org uuid) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  raised integer;
  resolved integer;
begin
  with firing as (
    select r.id as rule_id, r.name, f.*, coalesce(f.budget_amount, (r.condition ->> 'amount')::numeric) as amount
    from public.alert_rules r
    join public.spend_forecasts f on f.org_id = r.org_id
     and (r.condition ->> 'budget_id' is null or f.budget_id = (r.condition ->> 'budget_id')::uuid)
     and (f.budget_id is not null or r.condition ? 'amount')
    where r.org_id = org and r.enabled and r.type = 'forecast_overrun' and f.period_end > now()
  )
  insert into public.alert_events (org_id, rule_id, budget_id, dedup_key, severity, title, details)
  select org, x.rule_id, x.budget_id,
         format('forecast_overrun:%s:%s:%s', x.rule_id, coalesce(x.budget_id::text, 'org'),
                to_char(x.period_start at time zone 'UTC', 'YYYY-MM-DD')),
         'warning',
         format('%s: forecast $%s against $%s by %s (80%%: $%s to $%s)', x.name, round(x.forecast, 2),
                round(x.amount, 2), to_char(x.period_end at time zone 'UTC', 'YYYY-MM-DD'), round(x.lower_80, 2),
                round(x.upper_80, 2)),
         jsonb_build_object('kind', 'forecast_overrun', 'forecast_id', x.id, 'forecast', x.forecast,
                            'amount', x.amount, 'exhaustion_date', x.exhaustion_date,
                            'overrun_probability', x.overrun_probability)
  from firing x
  where case when x.budget_id is not null
             then x.overrun_probability >= coalesce((select (r.condition ->> 'probability')::numeric
                                                       from public.alert_rules r where r.id = x.rule_id), 0.5)
             else x.forecast > x.amount end
  on conflict (org_id, dedup_key) do nothing;
  get diagnostics raised = row_count;
  update public.alert_events e set status = 'resolved'
   where e.org_id = org and e.status <> 'resolved' and e.details ->> 'kind' = 'forecast_overrun'
     and exists (select 1 from public.spend_forecasts f
                  where f.id = (e.details ->> 'forecast_id')::uuid
                    and (f.period_end <= now() or f.forecast <= (e.details ->> 'amount')::numeric));
  get diagnostics resolved = row_count;
  return jsonb_build_object('raised', raised, 'resolved', resolved);
end
$$;
comment on function private.sync_forecast_alerts(uuid) is
  'Raise one forecast_overrun event per rule, forecast and period while the forecast is over; resolve it after.';
revoke all on function private.sync_forecast_alerts(uuid) from public;
grant execute on function private.sync_forecast_alerts(uuid) to service_role;

-- Daily spend of a budget's scope over its organization's local days, from the rollups (budget_spend).
create function private.budget_daily_spend(budget public.budgets, days integer, at timestamptz default now())
returns table (day date, spend numeric)
language sql stable set search_path = '' as $$
  select (d at time zone o.timezone)::date, private.budget_spend(budget, d, d + interval '1 day')
  from public.organizations o
  cross join lateral generate_series(date_trunc('day', at at time zone o.timezone) - make_interval(days => days),
                                     date_trunc('day', at at time zone o.timezone), interval '1 day') g
  cross join lateral (select g at time zone o.timezone as d) x
  where o.id = budget.org_id
  order by 1
$$;
comment on function private.budget_daily_spend(public.budgets, integer, timestamptz) is
  'Spend of the budget''s scope per local day, the last `days` whole days and today so far.';
revoke all on function private.budget_daily_spend(public.budgets, integer, timestamptz) from public;

-- ---------------------------------------------------------------- report
create function public.forecast_report(org uuid default null) returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object(
    'organization', (select to_jsonb(f) - 'budget_id' from public.spend_forecasts f
                      where f.budget_id is null and (org is null or f.org_id = org)
                      order by f.period_start desc, f.generated_at desc limit 1),
    'budgets', coalesce((select jsonb_agg(to_jsonb(f) || jsonb_build_object('budget_name', b.name)
                                          order by b.name)
                           from public.spend_forecasts f join public.budgets b on b.id = f.budget_id
                          where (org is null or f.org_id = org) and f.period_end > now()), '[]'::jsonb))
$$;
comment on function public.forecast_report(uuid) is
  'The caller''s latest month-end forecast and its budgets'' current-period forecasts.';
revoke all on function public.forecast_report(uuid) from public;
grant execute on function public.forecast_report(uuid) to authenticated, service_role;
