-- Budget periods: daily, weekly (start day configurable) or monthly, on the calendar of the
-- organization's time zone. A period is computed from the clock, never stored and reset by a job, so
-- a budget starts its new period at local midnight whether or not anything runs then.

-- The organization's time zone must be one Postgres knows, or every period computation would fail.
create function private.check_timezone() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  if not exists (select 1 from pg_catalog.pg_timezone_names where name = new.timezone) then
    raise exception 'timezone: % is not a known time zone name (e.g. Europe/Paris)', new.timezone
      using errcode = '22023';
  end if;
  return new;
end
$$;
comment on function private.check_timezone() is 'Trigger: refuse an organization time zone Postgres does not know.';
create trigger check_timezone before insert or update of timezone on public.organizations
  for each row execute function private.check_timezone();

-- [period_start, period_end) of the period containing `at`, in time zone tz. week_start: 0 = Sunday
-- .. 6 = Saturday. Local midnights are converted back with the zone's rules, so a period that spans a
-- daylight-saving change is 23 or 25 hours long, as the calendar says.
create function private.budget_period(period text, week_start smallint, tz text, at timestamptz)
returns table (period_start timestamptz, period_end timestamptz)
language sql stable parallel safe rows 1 set search_path = '' as $$
  with local as (select (at at time zone tz) as t)
  select b.s at time zone tz, b.e at time zone tz
    from local l
   cross join lateral (
     select date_trunc('day', l.t) as s, date_trunc('day', l.t) + interval '1 day' as e
      where period = 'daily'
     union all
     select d, d + interval '7 days'
       from (select date_trunc('day', l.t)
                    - make_interval(days => ((extract(dow from l.t)::integer - week_start + 7) % 7)) as d) w
      where period = 'weekly'
     union all
     select date_trunc('month', l.t), date_trunc('month', l.t) + interval '1 month'
      where period = 'monthly'
   ) b
$$;
comment on function private.budget_period(text, smallint, text, timestamptz) is
  'The [start, end) of the daily, weekly (week_start 0=Sunday..6) or monthly period holding `at`, '
  'on the calendar of time zone tz.';

-- The current period of a budget, on its organization's calendar.
create function private.budget_current_period(budget public.budgets, at timestamptz default now())
returns table (period_start timestamptz, period_end timestamptz)
language sql stable rows 1 set search_path = '' as $$
  select p.period_start, p.period_end
    from public.organizations o
   cross join lateral private.budget_period(budget.period, budget.week_start, o.timezone, at) p
   where o.id = budget.org_id
$$;
comment on function private.budget_current_period(public.budgets, timestamptz) is
  'The budget''s period holding `at` (default now), in its organization''s time zone.';

revoke all on function private.budget_period(text, smallint, text, timestamptz),
  private.budget_current_period(public.budgets, timestamptz) from public;
grant execute on function private.budget_period(text, smallint, text, timestamptz),
  private.budget_current_period(public.budgets, timestamptz) to authenticated, service_role;
