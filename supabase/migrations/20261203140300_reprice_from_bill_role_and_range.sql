-- Re-price from the bill: the permission check keys on the caller's database role, not on whether the
-- request carries a user id (a signed-in session without one skipped it): the service role and direct
-- logins of the platform itself skip it, an API role needs prices.write. Its range is capped at the usage
-- retention (400 days), as the report's is.

create or replace function public.reprice_from_bill(org uuid, provider text, canonical_model text,
                                         first_day date default null, last_day date default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' set jit = off as $$
declare
  upto date := coalesce(reprice_from_bill.last_day, (now() at time zone 'UTC')::date);
  since date := coalesce(reprice_from_bill.first_day, upto - 31);
  latest record;
  start_day date;
  only_unpriced boolean;
  price jsonb;
  redone jsonb;
begin
  -- the role the session runs as (SET ROLE, which security definer leaves as it is), else its login
  if coalesce(nullif(current_setting('role', true), 'none'), session_user::text) <> 'service_role'
     and (coalesce(nullif(current_setting('role', true), 'none'), session_user::text) in ('authenticated', 'anon')
          or (select auth.uid()) is not null)
     and not private.has_permission(reprice_from_bill.org, 'prices.write') then
    raise exception 'you may not set prices for this organization' using errcode = '42501';
  end if;
  if since > upto then
    raise exception 'first_day: must not be after last_day' using errcode = '22023';
  end if;
  if upto - since + 1 > 400 then
    raise exception 'last_day: a range holds at most 400 days' using errcode = '22023';
  end if;
  -- the most recent day the model's gap was ours, with the prices the provider billed that day
  select d.day, d.billed_prices into latest
    from private.reconciliation_daily d
   where d.org_id = reprice_from_bill.org and d.provider = lower(btrim(reprice_from_bill.provider))
     and d.canonical_model = lower(btrim(reprice_from_bill.canonical_model)) and d.day between since and upto
     and d.billed_prices ? 'input' and d.billed_prices ? 'output'
     and exists (select 1 from private.reconciliation_causes c
                  where c.org_id = d.org_id and c.day = d.day and c.provider = d.provider
                    and c.canonical_model = d.canonical_model and c.cause in ('price_change', 'unpriced_model')
                    and c.amount_usd <> 0)
   order by d.day desc
   limit 1;
  if latest.day is null then
    raise exception 'canonical_model: no gap from a missing or different price for % of % between % and %',
      canonical_model, provider, since, upto using errcode = '22023';
  end if;
  -- From the first day the provider billed these prices (within half a percent); for a model we never
  -- priced, all of history.
  select min(d.day), bool_and(not exists (select 1 from private.reconciliation_causes c
                                          where c.org_id = d.org_id and c.day = d.day and c.provider = d.provider
                                            and c.canonical_model = d.canonical_model and c.cause = 'price_change'))
    into start_day, only_unpriced
    from private.reconciliation_daily d
   where d.org_id = reprice_from_bill.org and d.provider = lower(btrim(reprice_from_bill.provider))
     and d.canonical_model = lower(btrim(reprice_from_bill.canonical_model)) and d.day between since and latest.day
     and abs((d.billed_prices ->> 'input')::numeric - (latest.billed_prices ->> 'input')::numeric)
         <= 0.005 * (latest.billed_prices ->> 'input')::numeric
     and abs((d.billed_prices ->> 'output')::numeric - (latest.billed_prices ->> 'output')::numeric)
         <= 0.005 * (latest.billed_prices ->> 'output')::numeric;
  price := public.set_model_price(
    reprice_from_bill.org, lower(btrim(reprice_from_bill.canonical_model)),
    (latest.billed_prices ->> 'input')::numeric, (latest.billed_prices ->> 'output')::numeric,
    lower(btrim(reprice_from_bill.provider)),
    case when only_unpriced then null else (start_day::timestamp at time zone 'UTC') end,
    (latest.billed_prices ->> 'cached')::numeric, (latest.billed_prices ->> 'cache_write')::numeric,
    null, null, format('from the provider''s bill of %s (reconciliation re-price)', latest.day));
  redone := private.reconcile(reprice_from_bill.org, since, upto);
  return price || jsonb_build_object('reconciled', redone);
end
$$;
