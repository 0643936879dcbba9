-- The forecasts' series in one pass. private.scope_daily_spend (20261202003400) summed each day with a
-- budget_spend call of its own, and each call planned the raw table's day partitions again: 57 days
-- took 28 s for one scope where partitions cover the retention period. Here the range is read once
-- from the hourly sources (rollup, pending deltas, raw tail), planned with the range and watermark as
-- values (EXECUTE ... USING), so planning prunes the partitions; hours are assigned to the local day they
-- start in (exact for whole-hour time zones; in :30/:45 zones the hour across local midnight counts for
-- the day it starts in). Unpriced calls count at the conservative price, as budget_spend counts them.
-- End-user scopes, which the hourly sources do not carry, keep the day-by-day path.
create or replace function private.scope_daily_spend(org uuid, scope_type text, scope_id text, days integer,
                                                     at timestamptz default now())
returns table (day date, spend numeric)
language plpgsql stable set search_path = '' set jit = off as $$
declare
  tz text := (select o.timezone from public.organizations o where o.id = scope_daily_spend.org);
  last_day date;
  first_day date;
  from_at timestamptz;
  to_at timestamptz;
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
  scope public.budgets;
  tags text[];
  keys uuid[];
begin
  if tz is null then
    return;
  end if;
  scope := jsonb_populate_record(null::public.budgets, jsonb_build_object(
    'org_id', scope_daily_spend.org, 'name', 'forecast scope', 'amount', 1, 'currency', 'USD', 'period', 'monthly',
    'week_start', 1, 'scope_type', scope_daily_spend.scope_type, 'scope_id', scope_daily_spend.scope_id,
    'enabled', true));
  if scope_daily_spend.scope_type = 'user' then
    return query select s.day, s.spend from private.budget_daily_spend(scope, scope_daily_spend.days, scope_daily_spend.at) s;
    return;
  end if;
  last_day := (scope_daily_spend.at at time zone tz)::date;
  first_day := last_day - scope_daily_spend.days;
  from_at := date_trunc('hour', first_day::timestamp at time zone tz, 'UTC');
  to_at := date_trunc('hour', scope_daily_spend.at, 'UTC') + interval '1 hour';
  select m.tag_values, m.key_ids into tags, keys from private.budget_scope_match(scope) m;

  return query execute format($q$
    with priced as (
      select (s.bucket at time zone $13)::date as day, sum(s.cost_usd) as spend
        from (%s) s
       where private.budget_covers($14, $15, $16, s.team, s.project, s.model, s.feature, s.api_key_id)
       group by 1
    ), unpriced as (
      select x.day, sum((x.input_tokens * c.input_mtok + x.output_tokens * c.output_mtok) * 0.000001) as spend
        from (select (u.occurred_at at time zone $13)::date as day, u.provider, sum(u.input_tokens) as input_tokens,
                     sum(u.output_tokens) as output_tokens
                from public.usage_records u
               where u.org_id = $3 and not u.priced and u.occurred_at >= $1 and u.occurred_at < $2
                 and private.budget_covers($14, $15, $16, u.team, u.project, u.model, u.feature, u.api_key_id)
               group by 1, 2) x
       cross join lateral private.conservative_mtok(x.provider) c
       group by 1
    )
    select g.day::date, coalesce(p.spend, 0) + coalesce(n.spend, 0)
      from generate_series($17::date, $18::date, interval '1 day') g(day)
      left join priced p on p.day = g.day::date
      left join unpriced n on n.day = g.day::date
     order by 1 $q$,
    private.usage_sources_sql('hour', ' and org_id = $3', false))
  using from_at, to_at, scope_daily_spend.org, null::text, null::text, null::text, null::text, null::text,
        null::uuid, null::text, wm, null::text, tz, scope_daily_spend.scope_type, coalesce(tags, '{}'),
        coalesce(keys, '{}'), first_day, last_day;
end
$$;
comment on function private.scope_daily_spend(uuid, text, text, integer, timestamptz) is
  'Spend per local day of any budget scope of an organization (organization, team, project, ...), the last '
  '`days` whole days and today so far, in one pass over the hourly sources (unpriced calls at the conservative '
  'price): the series the forecasts job models for the organization and for every budget.';
