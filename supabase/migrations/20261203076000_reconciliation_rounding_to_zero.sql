-- A line rounded down to zero cents is rounding too: a quiet model's day billed $0.00 for tokens we priced
-- at a few tenths of a cent was taken as a price of zero.

create or replace function private.reconciliation_classes(org uuid, first_day date, last_day date)
returns table (day date, provider text, canonical_model text, category text, tier text, ctx text,
               ours_priced numeric, ours_unpriced numeric, billed numeric, our_price numeric, billed_price numeric,
               rounding numeric, cost_without_tokens numeric)
language sql stable set search_path = '' set jit = off as $$
  with providers as (
    select distinct c.provider, private.reconciliation_covered_through(reconciliation_classes.org, c.provider) as through,
           exists (select 1 from private.provider_billed_usage u
                    where u.org_id = reconciliation_classes.org and u.provider = c.provider
                      and u.context_window is not null) as reports_context
      from public.provider_connections c
     where c.org_id = reconciliation_classes.org
       and exists (select 1 from private.provider_admin_keys a where a.connection_id = c.id)
  ), ours as (
    select (u.occurred_at at time zone 'UTC')::date as day, p.provider, u.canonical_model,
           private.reconciliation_tier(u.service_tier) as tier,
           case when p.reports_context and u.input_tokens > private.reconciliation_long_context_tokens()
                then 'long' else 'short' end as ctx,
           u.priced,
           sum(u.input_tokens - u.cached_tokens - u.cache_write_tokens) as input, sum(u.cached_tokens) as cached,
           sum(u.cache_write_tokens) as cache_write, sum(u.output_tokens) as output
      from public.usage_records u
      join providers p on p.provider = lower(btrim(u.provider))
     where u.org_id = reconciliation_classes.org
       and u.occurred_at >= (reconciliation_classes.first_day::timestamp at time zone 'UTC')
       and u.occurred_at < ((reconciliation_classes.last_day + 1)::timestamp at time zone 'UTC')
       and (u.occurred_at at time zone 'UTC')::date < p.through
     group by 1, 2, 3, 4, 5, 6
  ), ours_classes as (
    select o.day, o.provider, o.canonical_model, t.category, o.tier, o.ctx,
           sum(t.tokens) filter (where o.priced) as ours_priced, sum(t.tokens) filter (where not o.priced) as ours_unpriced
      from ours o
     cross join lateral (values ('input', o.input), ('cached', o.cached), ('cache_write', o.cache_write),
                                ('output', o.output)) t (category, tokens)
     group by 1, 2, 3, 4, 5, 6
  ), billed_classes as (
    select b.day, b.provider, b.canonical_model, t.category, private.reconciliation_tier(b.service_tier, b.batch) as tier,
           private.reconciliation_context(b.context_window) as ctx, sum(t.tokens) as billed
      from private.provider_billed_usage_daily b
      join providers p on p.provider = b.provider
     cross join lateral (values ('input', b.input_tokens), ('cached', b.cached_input_tokens),
                                ('cache_write', b.cache_write_tokens), ('output', b.output_tokens)) t (category, tokens)
     where b.org_id = reconciliation_classes.org and b.day between reconciliation_classes.first_day and reconciliation_classes.last_day
       and b.day < p.through
     group by 1, 2, 3, 4, 5, 6
  ), costs as (
    -- token cost lines by category, tier and window ('any' when the line does not say)
    select c.day, c.provider, c.canonical_model, private.reconciliation_token_category(c.token_type, c.line_item) as category,
           private.reconciliation_tier(c.service_tier,
                                       coalesce(c.line_item, '') ilike '%batch%' or coalesce(c.token_type, '') ilike '%batch%') as tier,
           case when c.context_window is null then 'any' else private.reconciliation_context(c.context_window) end as ctx,
           sum(c.amount_usd) as amount, count(*) as lines, bool_and(c.amount_usd = round(c.amount_usd, 2)) as in_cents
      from private.provider_billed_cost_daily c
      join providers p on p.provider = c.provider
     where c.org_id = reconciliation_classes.org and c.day between reconciliation_classes.first_day and reconciliation_classes.last_day
       and c.day < p.through and c.cost_type = 'tokens'
       and private.reconciliation_token_category(c.token_type, c.line_item) is not null
     group by 1, 2, 3, 4, 5, 6
  ), keys as (
    select k.day, k.provider, k.canonical_model, k.category, k.tier, k.ctx
      from (select o.day, o.provider, o.canonical_model, o.category, o.tier, o.ctx from ours_classes o
            union select b.day, b.provider, b.canonical_model, b.category, b.tier, b.ctx from billed_classes b
            union select c.day, c.provider, c.canonical_model, c.category, c.tier, c.ctx from costs c where c.ctx <> 'any'
            union select c.day, c.provider, c.canonical_model, c.category, c.tier, 'short' from costs c where c.ctx = 'any'
           ) k
  ), names as materialized (
    -- each model resolved once, as ingest resolves it: the organization's own price first
    select n.provider, n.canonical_model, r.provider_id, r.model_id, r.direct, o.provider_id as org_provider_id,
           o.model_id as org_model_id
      from (select distinct k.provider, k.canonical_model from keys k where k.canonical_model is not null) n
      left join lateral private.resolve_price(n.provider, n.canonical_model) r on true
      left join lateral private.resolve_org_price(reconciliation_classes.org, n.provider, n.canonical_model) o on true
  ), prices as (
    -- the price set a call of the class would get at noon of its day: a call of 1,000 input tokens, or of
    -- 1,000,000 for the long window, so a long-context tier applies exactly when the class is long
    select d.day, d.provider, d.canonical_model, d.tier, d.ctx, p.input_mtok / 1000000 as input,
           coalesce(p.cache_read_mtok, p.input_mtok) / 1000000 as cached,
           coalesce(p.cache_write_mtok, p.input_mtok) / 1000000 as cache_write, p.output_mtok / 1000000 as output
      from (select distinct k.day, k.provider, k.canonical_model, k.tier, k.ctx from keys k) d
      join names n on n.provider = d.provider and n.canonical_model = d.canonical_model
     cross join lateral (select (d.day + time '12:00') at time zone 'UTC' as at,
                                case when d.ctx = 'long' then 1000000 else 1000 end::bigint as size,
                                nullif(d.tier, 'standard') as tier) a
      left join lateral (
        select x.price_id from (
          (select c.price_id, 1 as rank
             from private.price_cost(n.org_provider_id, n.org_model_id, false, a.at, a.size, 0, 0, 0, 0, a.tier) c
            where n.org_model_id is not null)
          union all
          (select c.price_id, 2
             from private.price_cost(n.provider_id, n.model_id, n.direct, a.at, a.size, 0, 0, 0, 0, a.tier) c
            where n.model_id is not null)
        ) x order by x.rank limit 1) pc on true
      left join private.model_prices p on p.id = pc.price_id
  ), joined as (
    select k.day, k.provider, k.canonical_model, k.category, k.tier, k.ctx,
           coalesce(o.ours_priced, 0) as ours_priced, coalesce(o.ours_unpriced, 0) as ours_unpriced,
           coalesce(b.billed, 0) as billed,
           case k.category when 'input' then p.input when 'cached' then p.cached
                           when 'cache_write' then p.cache_write else p.output end as our_price,
           coalesce(ce.amount, 0) as cost_exact, coalesce(ce.lines, 0) as lines_exact,
           ca.amount as cost_any, coalesce(ca.lines, 0) as lines_any,
           coalesce(ce.in_cents, true) and coalesce(ca.in_cents, true) as in_cents
      from keys k
      left join ours_classes o using (day, provider, canonical_model, category, tier, ctx)
      left join billed_classes b using (day, provider, canonical_model, category, tier, ctx)
      left join prices p using (day, provider, canonical_model, tier, ctx)
      left join costs ce using (day, provider, canonical_model, category, tier, ctx)
      left join costs ca on ca.day = k.day and ca.provider = k.provider
                        and ca.canonical_model is not distinct from k.canonical_model
                        and ca.category = k.category and ca.tier = k.tier and ca.ctx = 'any'
  ), per_tier as (
    -- per category and tier: the window-less cost spread by our price (or by tokens when unpriced)
    select j.*,
           sum(j.billed * j.our_price) over w as billed_at_ours,
           sum(j.billed) over w as billed_tier,
           count(*) filter (where j.billed > 0 and j.our_price is null) over w as unpriced_billed_classes,
           sum(j.cost_exact) over w + coalesce(j.cost_any, 0) as cost_tier,
           sum(j.lines_exact) over w + j.lines_any as lines_tier,
           bool_and(j.in_cents) over w as in_cents_tier
      from joined j
    window w as (partition by j.day, j.provider, j.canonical_model, j.category, j.tier)
  ), spread as (
    select t.*,
           t.cost_exact + coalesce(t.cost_any, 0) * case
             when t.billed_tier = 0 then 0
             when t.unpriced_billed_classes = 0 and t.billed_at_ours > 0 then t.billed * t.our_price / t.billed_at_ours
             else t.billed / t.billed_tier end as cost_class,
           t.unpriced_billed_classes = 0 and t.billed_tier > 0 and t.in_cents_tier
             and abs(t.cost_tier - t.billed_at_ours) <= 0.005 * greatest(t.lines_tier, 1) + 0.000000001 as within_rounding
      from per_tier t
  ), category_scale as (
    -- billed over ours for a category's billed classes: how a class billed on one side only is priced
    select s.day, s.provider, s.canonical_model, s.category,
           sum(s.cost_class) filter (where s.billed > 0) / nullif(sum(s.billed * s.our_price) filter (where s.billed > 0), 0) as scale,
           sum(s.cost_class) filter (where s.billed > 0) / nullif(sum(s.billed) filter (where s.billed > 0), 0) as flat
      from spread s
     group by 1, 2, 3, 4
  )
  select s.day, s.provider, s.canonical_model, s.category, s.tier, s.ctx, s.ours_priced, s.ours_unpriced, s.billed,
         s.our_price,
         case when s.within_rounding then s.our_price
              when s.billed > 0 then s.cost_class / s.billed
              else coalesce(s.our_price * coalesce(g.scale, 1), g.flat) end as billed_price,
         -- rounding and cost without tokens are booked once per category and tier, on its first class
         case when s.within_rounding and s.ctx = min(s.ctx) over w then s.cost_tier - s.billed_at_ours else 0 end,
         case when s.billed_tier = 0 and s.ctx = min(s.ctx) over w then s.cost_tier else 0 end
    from spread s
    left join category_scale g using (day, provider, canonical_model, category)
  window w as (partition by s.day, s.provider, s.canonical_model, s.category, s.tier)
$$;
comment on function private.reconciliation_classes(uuid, date, date) is
  'Per day, provider, canonical model, token category, tier and context window of org: our tokens (priced, '
  'unpriced), the provider''s billed tokens, our and the billed USD per token, billed rounding and cost without tokens.';
