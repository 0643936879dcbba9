-- Budget spend reads raw usage rows only at a period's ragged edges. The raw-row queries used to cover the
-- whole period and filter out the part the rollups had already counted, so each call still visited every
-- row of the period's days (and opened each of their partitions) only to discard them: a strict
-- reservation of a busy key (the gateway's, the SDK's strict mode) slowed down with every call made that
-- day. Now each grain is summed over its own ranges only, and an empty range is never queried; a period
-- that starts and ends on UTC days (daily, weekly and monthly budgets of UTC organizations) reads the
-- rollups alone. The result is the same sum.
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
        select coalesce(sum(v.cost_usd), 0) into part from analytics.usage_daily v
         where v.org_id = budget.org_id and v.bucket >= d0 and v.bucket < d1
           and private.budget_covers(scope, tags, keys, v.team, v.project, v.model, v.feature, v.api_key_id);
        priced := priced + part;
      end if;
    end if;
    for i in 1 .. coalesce(array_length(hour_lo, 1), 0) loop
      continue when hour_lo[i] >= hour_hi[i];
      select coalesce(sum(v.cost_usd), 0) into part from analytics.usage_hourly v
       where v.org_id = budget.org_id and v.bucket >= hour_lo[i] and v.bucket < hour_hi[i]
         and private.budget_covers(scope, tags, keys, v.team, v.project, v.model, v.feature, v.api_key_id);
      priced := priced + part;
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
