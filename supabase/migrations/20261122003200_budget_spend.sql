-- Budget spend: what a budget's scope spent in a period, read from the rollups' read views (analytics,
-- 20261122002500), never from a counter row that every event would update. Unpriced usage counts at a
-- conservative price (the provider's dearest known model) until it is re-priced, never at zero.
--
-- A period on a local calendar rarely falls on UTC days, so a range is summed in three grains: whole
-- UTC days from analytics.usage_daily, the whole UTC hours around them from analytics.usage_hourly,
-- and the minutes left at either edge (zones offset by :30 or :45) from the raw rows. End users are
-- not a rollup dimension of those views; their budgets read analytics.end_user_daily and raw rows.

-- ---------------------------------------------------------------- conservative prices
-- The dearest input and output prices known for a provider (standard tier, any model, any date), or
-- over every provider when the provider is unknown. USD per million tokens. With no prices loaded at
-- all (a database never synced) it falls back to $150/$600, the dearest list price when this was written.
-- Definer: name resolution reads catalogue tables users cannot, though prices are public knowledge.
create function private.conservative_mtok(provider text)
returns table (input_mtok numeric, output_mtok numeric)
language sql stable security definer rows 1 set search_path = '' as $$
  with p as (
    select (select pp.provider_id from private.price_provider(lower(btrim(conservative_mtok.provider))) pp) as id
  )
  select coalesce(
           (select max(m.input_mtok) from private.model_prices m, p where m.provider_id = p.id and m.service_tier = ''),
           (select max(m.input_mtok) from private.model_prices m where m.service_tier = ''), 150),
         coalesce(
           (select max(m.output_mtok) from private.model_prices m, p where m.provider_id = p.id and m.service_tier = ''),
           (select max(m.output_mtok) from private.model_prices m where m.service_tier = ''), 600)
$$;
comment on function private.conservative_mtok(text) is
  'Dearest known input/output prices (USD per Mtok) of a provider''s models; of all providers when it is unknown.';

-- ---------------------------------------------------------------- scope
-- What a budget's scope matches, resolved once per evaluation: the tag values (team or project name
-- and id) and the API keys (a key's own id, or keys pinned to the project). Definer, so every role
-- that reads a budget computes the same spend (members cannot read API keys); a signed-in caller gets
-- nothing for an organization whose budgets it may not read.
create function private.budget_scope_match(budget public.budgets)
returns table (tag_values text[], key_ids uuid[])
language plpgsql stable security definer rows 1 set search_path = '' as $$
begin
  if (select auth.uid()) is not null and not private.has_permission(budget.org_id, 'budgets.read') then
    return;
  end if;
  case budget.scope_type
    when 'team' then
      return query select array[t.name, t.id::text], '{}'::uuid[] from public.teams t
                    where t.org_id = budget.org_id and t.id::text = budget.scope_id;
    when 'project' then
      return query select array[p.name, p.id::text],
                          coalesce((select array_agg(k.id) from public.api_keys k where k.project_id = p.id), '{}')
                     from public.projects p
                    where p.org_id = budget.org_id and p.id::text = budget.scope_id;
    when 'api_key' then
      return query select '{}'::text[], array[k.id] from public.api_keys k
                    where k.org_id = budget.org_id and k.id::text = budget.scope_id;
    else
      return query select array[budget.scope_id], '{}'::uuid[];
  end case;
end
$$;
comment on function private.budget_scope_match(public.budgets) is
  'Tag values and API key ids a budget''s scope matches (team/project: name and id; project: pinned keys too).';

-- Whether a row's attribution falls in a budget's scope (see budget_scope_match for tags and keys).
-- No SET clause, so the planner inlines it into budget_spend's queries instead of calling it per row;
-- every name in it is qualified and it reads no table.
create function private.budget_covers(scope text, tags text[], keys uuid[], team text, project text, model text,
                                      feature text, api_key_id uuid)
returns boolean
language sql immutable parallel safe as $$
  select case scope
           when 'organization' then true
           when 'team' then team = any (tags)
           when 'project' then project = any (tags) or api_key_id = any (keys)
           when 'model' then model = any (tags)
           when 'feature' then feature = any (tags)
           when 'api_key' then api_key_id = any (keys)
           else false
         end
$$;
comment on function private.budget_covers(text, text[], uuid[], text, text, text, text, uuid) is
  'True when a usage row''s team/project/model/feature/key falls in a budget scope (inlined; see budget_spend).';

-- ---------------------------------------------------------------- spend
-- Spend of a budget's scope in [from_at, to_at): priced cost from the rollups plus unpriced calls at
-- the conservative price (read from the raw table's partial index on unpriced rows, which stay few).
create function private.budget_spend(budget public.budgets, from_at timestamptz, to_at timestamptz)
returns numeric
language plpgsql stable set search_path = '' set jit = off as $$
declare
  scope text := budget.scope_type;
  tags text[];
  keys uuid[];
  d0 timestamptz := date_trunc('day', from_at, 'UTC');
  d1 timestamptz := date_trunc('day', to_at, 'UTC');
  h0 timestamptz := date_trunc('hour', from_at, 'UTC');
  h1 timestamptz := date_trunc('hour', to_at, 'UTC');
  priced numeric := 0;
  part numeric;
  unpriced numeric;
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
    select coalesce(sum(v.cost_usd), 0) into part from analytics.end_user_daily v
     where v.org_id = budget.org_id and v.end_user_id = budget.scope_id and v.bucket >= d0 and v.bucket < d1;
    priced := priced + part;
    select coalesce(sum(u.cost_usd), 0) into part from public.usage_records u
     where u.org_id = budget.org_id and u.end_user_id = budget.scope_id and u.occurred_at >= from_at
       and u.occurred_at < to_at and (d0 is null or u.occurred_at < d0 or u.occurred_at >= d1);
    priced := priced + part;
  else
    if d0 is not null then
      select coalesce(sum(v.cost_usd), 0) into part from analytics.usage_daily v
       where v.org_id = budget.org_id and v.bucket >= d0 and v.bucket < d1
         and private.budget_covers(scope, tags, keys, v.team, v.project, v.model, v.feature, v.api_key_id);
      priced := priced + part;
    end if;
    if h0 is not null then
      select coalesce(sum(v.cost_usd), 0) into part from analytics.usage_hourly v
       where v.org_id = budget.org_id and v.bucket >= h0 and v.bucket < h1
         and (d0 is null or v.bucket < d0 or v.bucket >= d1)
         and private.budget_covers(scope, tags, keys, v.team, v.project, v.model, v.feature, v.api_key_id);
      priced := priced + part;
    end if;
    select coalesce(sum(u.cost_usd), 0) into part from public.usage_records u
     where u.org_id = budget.org_id and u.occurred_at >= from_at and u.occurred_at < to_at
       and (h0 is null or u.occurred_at < h0 or u.occurred_at >= h1)
       and private.budget_covers(scope, tags, keys, u.team, u.project, u.model, u.feature, u.api_key_id);
    priced := priced + part;
  end if;

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
comment on function private.budget_spend(public.budgets, timestamptz, timestamptz) is
  'Spend (USD) of a budget''s scope in [from_at, to_at), from the rollups, unpriced calls at the conservative price.';


revoke all on function private.conservative_mtok(text), private.budget_scope_match(public.budgets),
  private.budget_covers(text, text[], uuid[], text, text, text, text, uuid),
  private.budget_spend(public.budgets, timestamptz, timestamptz) from public;
grant execute on function private.conservative_mtok(text), private.budget_scope_match(public.budgets),
  private.budget_covers(text, text[], uuid[], text, text, text, text, uuid),
  private.budget_spend(public.budgets, timestamptz, timestamptz) to authenticated, service_role;
