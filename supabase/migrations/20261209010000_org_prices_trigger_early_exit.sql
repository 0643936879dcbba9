-- The org-price trigger runs after every ingest statement. Its first check looked for an organization of
-- the new rows among those with prices of their own, which reads the whole transition table (about 0.5 ms
-- per 1,000 rows) even where no organization has set a price at all, the usual case. That case is now one
-- probe of the partial index on model_prices.org_id.
create or replace function private.apply_org_prices() returns trigger
language plpgsql volatile set search_path = '' set jit = off as $$
begin
  if not exists (select 1 from private.model_prices p where p.org_id is not null) then
    return null;
  end if;
  if not exists (select 1 from private.model_prices p
                  where p.org_id is not null and p.org_id in (select distinct n.org_id from new_rows n)) then
    return null;
  end if;
  with names as materialized (
    select n.org_id, n.provider, n.model, o.provider_id, o.model_id
      from (select distinct r.org_id, r.provider, r.model from new_rows r
             where exists (select 1 from private.model_prices p where p.org_id = r.org_id)) n
     cross join lateral private.resolve_org_price(n.org_id, n.provider, n.model) o
  ), fresh as (
    select r.id, r.occurred_at, c.price_id, c.price_model, round(c.cost_usd, 12) as cost_usd
      from new_rows r
      join names n on n.org_id = r.org_id and n.provider = r.provider and n.model = r.model
     cross join lateral private.price_cost(n.provider_id, n.model_id, false, r.occurred_at, r.input_tokens,
                                           r.output_tokens, r.cached_tokens, r.cache_write_tokens, r.reasoning_tokens,
                                           r.service_tier) c
  )
  update public.usage_records u
     set cost_usd = f.cost_usd, price_id = f.price_id, price_model = f.price_model, priced = true
    from fresh f
   where u.id = f.id and u.occurred_at = f.occurred_at
     and (u.cost_usd, u.price_id, u.price_model, u.priced) is distinct from (f.cost_usd, f.price_id, f.price_model, true);
  return null;
end
$$;
