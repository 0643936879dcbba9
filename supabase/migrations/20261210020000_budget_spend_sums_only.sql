-- Budget spend sums the rollups, their pending deltas and the raw rows not yet folded, cost only. It read
-- them through analytics.usage_daily and usage_hourly, which group every raw row since the last refresh
-- by bucket and dimensions and build its latency histogram, only for the budget to add up one column:
-- sorting and grouping were more than half of the time of a strict reservation or a gateway lease for a
-- busy organization (2,050 raw rows: 9.4 ms, of which the index scan 3.4 ms). The sum is the same:
-- those views are these three parts, their groups of zero requests left out, which carry no cost. On the
-- Timescale-licensed layout the views read continuous aggregates instead, and budgets still read them.

-- The cost of an organization's usage in [lo, hi) that a budget covers, from the `grain` ('hour' or 'day')
-- rollup, the deltas not yet folded into it and the raw rows past the watermark; lo and hi are on the
-- grain's boundaries (UTC).
create function private.budget_rollup_spend(org uuid, scope text, tags text[], keys uuid[], grain text,
                                            lo timestamptz, hi timestamptz)
returns numeric
language plpgsql stable set search_path = '' set jit = off set plan_cache_mode = force_generic_plan as $$
declare
  folded numeric;
  pending numeric;
  unfolded numeric;
  wm timestamptz := (select s.watermark from private.usage_rollup_state s);
begin
  if private.rollups_are_continuous_aggregates() then
    -- Continuous aggregates keep their own raw tail: the views read them as before.
    if grain = 'day' then
      select coalesce(sum(v.cost_usd), 0) into folded from analytics.usage_daily v
       where v.org_id = org and v.bucket >= lo and v.bucket < hi
         and private.budget_covers(scope, tags, keys, v.team, v.project, v.model, v.feature, v.api_key_id);
    else
      select coalesce(sum(v.cost_usd), 0) into folded from analytics.usage_hourly v
       where v.org_id = org and v.bucket >= lo and v.bucket < hi
         and private.budget_covers(scope, tags, keys, v.team, v.project, v.model, v.feature, v.api_key_id);
    end if;
    return folded;
  end if;
  if grain = 'day' then
    select coalesce(sum(r.cost_usd), 0) into folded from private.usage_rollup_daily r
     where r.org_id = org and r.bucket >= lo and r.bucket < hi
       and private.budget_covers(scope, tags, keys, r.team, r.project, r.model, r.feature, r.api_key_id);
  else
    select coalesce(sum(r.cost_usd), 0) into folded from private.usage_rollup_hourly r
     where r.org_id = org and r.bucket >= lo and r.bucket < hi
       and private.budget_covers(scope, tags, keys, r.team, r.project, r.model, r.feature, r.api_key_id);
  end if;
  -- Deltas are hourly; an hour inside [lo, hi) is inside it whole, as lo and hi are hour boundaries.
  select coalesce(sum(d.cost_usd), 0) into pending from private.usage_rollup_deltas d
   where d.org_id = org and d.bucket >= lo and d.bucket < hi
     and private.budget_covers(scope, tags, keys, d.team, d.project, d.model, d.feature, d.api_key_id);
  select coalesce(sum(u.cost_usd), 0) into unfolded from public.usage_records u
   where u.org_id = org and u.occurred_at >= greatest(lo, wm) and u.occurred_at < hi
     and private.budget_covers(scope, tags, keys, u.team, u.project, u.model, u.feature, u.api_key_id);
  return folded + pending + unfolded;
end
$$;
comment on function private.budget_rollup_spend(uuid, text, text[], uuid[], text, timestamptz, timestamptz) is
  'Covered cost of an organization in [lo, hi) on hour or day boundaries: rollup, pending deltas, raw rows past the watermark.';
revoke all on function private.budget_rollup_spend(uuid, text, text[], uuid[], text, timestamptz, timestamptz)
  from public;
grant execute on function private.budget_rollup_spend(uuid, text, text[], uuid[], text, timestamptz, timestamptz)
  to authenticated, service_role;

create or replace function private.budget_spend(budget public.budgets, from_at timestamptz, to_at timestamptz)
returns numeric
language plpgsql stable set search_path = '' set jit = off set plan_cache_mode = force_generic_plan as $$
declare
  scope text := budget.scope_type;
  tags text[];
  keys uuid[];
  d0 timestamptz := date_trunc('day', from_at, 'UTC');
  d1 timestamptz := date_trunc('day', to_at, 'UTC');
  h0 timestamptz := date_trunc('hour', from_at, 'UTC');
  h1 timestamptz := date_trunc('hour', to_at, 'UTC');
  -- Ranges [lo[i], hi[i]) of each grain, built below; the three grains tile [from_at, to_at).
  hour_lo timestamptz[] := '{}';
  hour_hi timestamptz[] := '{}';
  raw_lo timestamptz[] := '{}';
  raw_hi timestamptz[] := '{}';
  priced numeric := 0;
  part numeric;
  unpriced numeric;
  i integer;
begin
  if to_at <= from_at then
    return 0;
  end if;
  select m.tag_values, m.key_ids into tags, keys from private.budget_scope_match(budget) m;
  if tags is null then
    return 0;  -- the team, project or key is gone: nothing can match
  end if;
  -- First whole UTC day/hour at or after from_at; last boundary at or before to_at.
  if d0 < from_at then d0 := d0 + interval '1 day'; end if;
  if h0 < from_at then h0 := h0 + interval '1 hour'; end if;
  if d1 <= d0 then d0 := null; d1 := null; end if;  -- no whole day inside: hours cover it
  if h1 <= h0 then h0 := null; h1 := null; end if;  -- no whole hour inside: raw rows cover it

  if scope = 'user' then
    -- End users have daily rollups only: whole days from them, everything else from raw rows.
    if d0 is null then
      raw_lo := array[from_at]; raw_hi := array[to_at];
    else
      raw_lo := array[from_at, d1]; raw_hi := array[d0, to_at];
      select coalesce(sum(v.cost_usd), 0) into part from analytics.end_user_daily v
       where v.org_id = budget.org_id and v.end_user_id = budget.scope_id and v.bucket >= d0 and v.bucket < d1;
      priced := priced + part;
    end if;
  else
    if h0 is null then
      raw_lo := array[from_at]; raw_hi := array[to_at];
    else
      raw_lo := array[from_at, h1]; raw_hi := array[h0, to_at];
      if d0 is null then
        hour_lo := array[h0]; hour_hi := array[h1];
      else
        hour_lo := array[h0, d1]; hour_hi := array[d0, h1];
        priced := priced + private.budget_rollup_spend(budget.org_id, scope, tags, keys, 'day', d0, d1);
      end if;
    end if;
    for i in 1 .. coalesce(array_length(hour_lo, 1), 0) loop
      continue when hour_lo[i] >= hour_hi[i];
      priced := priced + private.budget_rollup_spend(budget.org_id, scope, tags, keys, 'hour', hour_lo[i],
                                                     hour_hi[i]);
    end loop;
  end if;
  for i in 1 .. coalesce(array_length(raw_lo, 1), 0) loop
    continue when raw_lo[i] >= raw_hi[i];
    select coalesce(sum(u.cost_usd), 0) into part from public.usage_records u
     where u.org_id = budget.org_id and u.occurred_at >= raw_lo[i] and u.occurred_at < raw_hi[i]
       and (case when scope = 'user' then u.end_user_id = budget.scope_id
                 else private.budget_covers(scope, tags, keys, u.team, u.project, u.model, u.feature,
                                            u.api_key_id) end);
    priced := priced + part;
  end loop;

  -- Unpriced calls from the raw table's partial index on unpriced rows (they stay few), at the
  -- provider's conservative price.
  select coalesce(sum((u.input_tokens * c.input_mtok + u.output_tokens * c.output_mtok) * 0.000001), 0)
    into unpriced
    from (select u.provider, sum(u.input_tokens) as input_tokens, sum(u.output_tokens) as output_tokens
            from public.usage_records u
           where u.org_id = budget.org_id and not u.priced and u.occurred_at >= from_at and u.occurred_at < to_at
             and (case when scope = 'user' then u.end_user_id = budget.scope_id
                       else private.budget_covers(scope, tags, keys, u.team, u.project, u.model, u.feature,
                                                  u.api_key_id) end)
           group by u.provider) u
   cross join lateral private.conservative_mtok(u.provider) c;
  return priced + unpriced;
end
$$;
