-- Re-pricing: recompute the cost of stored usage after prices or name rules change.
-- Lives after usage (000600) because it reads public.usage_records; prices live in 000500.

-- Set-based: one update joined to the prices, touching only rows whose cost, price or priced flag
-- would change. Names are resolved once per distinct (provider, model), not once per row. A row
-- with no price now keeps the cost it has: a model genai-prices stops listing must not erase costs
-- already recorded. jit is off: the work is index probes, and compiling costs more than it saves.
create function private.reprice_usage_rows(
  org uuid, only_unpriced boolean, price_models text[], since timestamptz)
returns bigint
language sql volatile set search_path = '' set jit = off as $$
  with todo as materialized (
    select u.id, u.occurred_at, u.provider, u.model, u.input_tokens, u.output_tokens, u.cached_tokens,
           u.cache_write_tokens, u.reasoning_tokens, u.service_tier
      from public.usage_records u
     where (reprice_usage_rows.org is null or u.org_id = reprice_usage_rows.org)
       and (not u.priced
            or (not reprice_usage_rows.only_unpriced
                and (reprice_usage_rows.price_models is null or u.price_model = any (reprice_usage_rows.price_models))
                and (reprice_usage_rows.since is null or u.occurred_at >= reprice_usage_rows.since)))
  ), names as materialized (  -- else the planner folds it into the join and resolves every row
    select n.provider, n.model, r.provider_id, r.model_id, r.direct
      from (select distinct w.provider, w.model from todo w) n
     cross join lateral private.resolve_price(n.provider, n.model) r
  ), fresh as (
    select w.id, w.occurred_at, c.price_id, c.price_model, round(c.cost_usd, 12) as cost_usd
      from todo w
      join names n on n.provider = w.provider and n.model = w.model
     cross join lateral private.price_cost(
       n.provider_id, n.model_id, n.direct, w.occurred_at, w.input_tokens, w.output_tokens, w.cached_tokens,
       w.cache_write_tokens, w.reasoning_tokens, w.service_tier) c
  ), changed as (
    update public.usage_records u
       set cost_usd = f.cost_usd, price_id = f.price_id, price_model = f.price_model, priced = true
      from fresh f
     where u.id = f.id and u.occurred_at = f.occurred_at
       and (u.cost_usd, u.price_id, u.price_model, u.priced)
           is distinct from (f.cost_usd, f.price_id, f.price_model, true)
    returning 1
  )
  select count(*) from changed
$$;
comment on function private.reprice_usage_rows(uuid, boolean, text[], timestamptz) is
  'Re-price usage rows: unpriced ones always; priced ones unless only_unpriced, narrowed to price_models '
  '(provider/model) and occurred_at >= since when given. Returns the number of rows updated.';

create function private.reprice_usage(org uuid default null, only_unpriced boolean default false)
returns bigint
language sql volatile set search_path = '' as $$
  select private.reprice_usage_rows(reprice_usage.org, reprice_usage.only_unpriced, null, null)
$$;
comment on function private.reprice_usage(uuid, boolean) is
  'Recompute cost_usd, price_id, price_model and priced for an organization''s usage (all when org is null), '
  'or only its unpriced rows; returns the number of rows updated.';

revoke all on function private.reprice_usage_rows(uuid, boolean, text[], timestamptz),
  private.reprice_usage(uuid, boolean) from public;
grant execute on function private.reprice_usage_rows(uuid, boolean, text[], timestamptz),
  private.reprice_usage(uuid, boolean) to service_role;
