-- The cause amounts are rounded to a billionth of a dollar and unexplained is what the gap has left after
-- them: a residue of a few billionths showed as an "unexplained" row on days every rule had explained. A
-- residue under a millionth of a dollar is booked to rounding (our own arithmetic's); the amounts still add
-- up to the gap exactly.

create or replace function private.reconcile(org uuid, first_day date, last_day date) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  cell record;
  series record;
  best record;
  cells integer;
begin
  -- one reconciliation of an organization at a time (the job and a re-price may race)
  perform pg_advisory_xact_lock(hashtext('tokentra.reconcile'), hashtext(reconcile.org::text));
  if to_regclass('pg_temp.rc_steps') is not null then
    drop table pg_temp.rc_steps, pg_temp.rc_cells;
  end if;

  -- ------------------------------------------------------------ token moves, per class
  create temp table rc_steps on commit drop as
  with c as (
    select x.*, x.ours_priced + x.ours_unpriced as ours, coalesce(x.billed_price, 0) as pi
      from private.reconciliation_classes(reconcile.org, reconcile.first_day, reconcile.last_day) x
  ), t1 as (  -- tiers: our category total in a window, re-split by the billed tier shares
    select c.*, case when sum(c.billed) over w > 0 then sum(c.ours) over w * c.billed / sum(c.billed) over w
                     else c.ours end as o1
      from c window w as (partition by c.day, c.provider, c.canonical_model, c.category, c.ctx)
  ), t2 as (  -- context windows: re-split by the billed window shares
    select t1.*, case when sum(t1.billed) over w > 0 then sum(t1.o1) over w * t1.billed / sum(t1.billed) over w
                      else t1.o1 end as o2
      from t1 window w as (partition by t1.day, t1.provider, t1.canonical_model, t1.category, t1.tier)
  ), t3 as (  -- cache: our input (uncached + cached + written) re-split by the billed shares
    select t2.*, case when t2.category = 'output' then t2.o2
                      when sum(t2.billed) filter (where t2.category <> 'output') over w > 0
                        then sum(t2.o2) filter (where t2.category <> 'output') over w * t2.billed
                             / sum(t2.billed) filter (where t2.category <> 'output') over w
                      else t2.o2 end as o3
      from t2 window w as (partition by t2.day, t2.provider, t2.canonical_model, t2.tier, t2.ctx)
  ), refs as (
    select t3.*,
           max(t3.pi) filter (where t3.ctx = 'short') over (partition by t3.day, t3.provider, t3.canonical_model,
                                                                          t3.category, t3.tier) as pi_short,
           max(t3.our_price) filter (where t3.ctx = 'short') over (partition by t3.day, t3.provider,
                                                                   t3.canonical_model, t3.category, t3.tier) as our_short,
           coalesce(bool_and(abs(t3.pi - t3.our_price) <= 0.005 * t3.our_price)
                      filter (where t3.category in ('input', 'output') and t3.tier = 'standard' and t3.ctx = 'short'
                                and t3.billed > 0 and t3.our_price is not null)
                      over (partition by t3.day, t3.provider, t3.canonical_model), true) as base_agrees
      from t3
  ), priced as (
    select r.*,
           -- the long-context premium the provider's prices carry beyond ours
           -- (without a short window billed that day, the provider's short price is taken to be ours)
           case when r.ctx = 'long' and r.our_price is not null and coalesce(r.our_short, r.our_price) > 0
                then r.ours_priced * (r.pi - coalesce(r.pi_short, r.our_short, r.our_price) * r.our_price
                                             / coalesce(r.our_short, r.our_price)) else 0 end as long_price
      from refs r
  )
  select p.*,
         case when p.our_price is null then p.ours * p.pi else p.ours_unpriced * p.pi end as unpriced,
         case when p.our_price is null then 0 else p.ours_priced * (p.pi - p.our_price) - p.long_price end as price_diff,
         case when p.our_price is null then 'unpriced_model'
              when p.category in ('cached', 'cache_write') and p.base_agrees then 'cache_accounting'
              when p.tier <> 'standard' and p.base_agrees then 'batch_flex_discount'
              else 'price_change' end as price_cause
    from priced p;

  -- ------------------------------------------------------------ per day, provider and model
  create temp table rc_cells on commit drop as
  with steps as (
    select s.day, s.provider, s.canonical_model,
           sum((s.o1 - s.ours) * s.pi) as tier_moves, sum((s.o2 - s.o1) * s.pi) as window_moves,
           sum((s.o3 - s.o2) * s.pi) as cache_moves, sum((s.billed - s.o3) * s.pi) as volume,
           sum(s.unpriced) as unpriced, sum(s.long_price) as long_price,
           sum(s.price_diff) filter (where s.price_cause = 'price_change') as price_change,
           sum(s.price_diff) filter (where s.price_cause = 'cache_accounting') as cache_price,
           sum(s.price_diff) filter (where s.price_cause = 'batch_flex_discount') as tier_price,
           sum(s.rounding) as billed_rounding,
           sum(s.ours_priced * coalesce(s.our_price, 0)) as ours_at_our_prices,
           sum(s.o3 - s.o2) filter (where s.category = 'cached') as cached_moved,
           sum(s.o3 - s.o2) filter (where s.category = 'cache_write') as written_moved,
           sum(s.o1 - s.ours) filter (where s.tier <> 'standard') as tier_tokens_moved,
           sum(s.o2 - s.o1) filter (where s.ctx = 'long') as long_tokens_moved,
           jsonb_object_agg(s.category, round(s.our_price * 1000000, 6))
             filter (where s.tier = 'standard' and s.ctx = 'short' and s.our_price is not null) as our_prices,
           jsonb_object_agg(s.category, round(s.pi * 1000000, 6))
             filter (where s.tier = 'standard' and s.ctx = 'short' and s.billed > 0) as billed_prices
      from pg_temp.rc_steps s
     group by 1, 2, 3
  ), providers as (
    select distinct c.provider, private.reconciliation_covered_through(reconcile.org, c.provider) as through
      from public.provider_connections c
     where c.org_id = reconcile.org and exists (select 1 from private.provider_admin_keys a where a.connection_id = c.id)
  ), tracked as (
    select (u.occurred_at at time zone 'UTC')::date as day, p.provider, u.canonical_model, count(*) as requests,
           count(*) filter (where not u.priced) as unpriced_requests,
           sum(u.input_tokens - u.cached_tokens - u.cache_write_tokens) as input, sum(u.cached_tokens) as cached,
           sum(u.cache_write_tokens) as cache_write, sum(u.output_tokens) as output,
           sum(u.reasoning_tokens) as reasoning,
           sum(u.input_tokens + u.output_tokens) filter (where private.reconciliation_tier(u.service_tier) = 'batch') as batch,
           coalesce(sum(u.cost_usd), 0) as cost
      from public.usage_records u
      join providers p on p.provider = lower(btrim(u.provider))
     where u.org_id = reconcile.org
       and u.occurred_at >= (reconcile.first_day::timestamp at time zone 'UTC')
       and u.occurred_at < ((reconcile.last_day + 1)::timestamp at time zone 'UTC')
       and (u.occurred_at at time zone 'UTC')::date < p.through
     group by 1, 2, 3
  ), billed as (
    select b.day, b.provider, b.canonical_model, sum(b.requests) as requests, sum(b.input_tokens) as input,
           sum(b.cached_input_tokens) as cached, sum(b.cache_write_tokens) as cache_write, sum(b.output_tokens) as output,
           sum(b.reasoning_tokens) as reasoning, sum(b.web_search_requests) as web_search,
           sum(b.input_tokens + b.cached_input_tokens + b.cache_write_tokens + b.output_tokens)
             filter (where private.reconciliation_tier(b.service_tier, b.batch) = 'batch') as batch
      from private.provider_billed_usage_daily b
      join providers p on p.provider = b.provider
     where b.org_id = reconcile.org and b.day between reconcile.first_day and reconcile.last_day and b.day < p.through
     group by 1, 2, 3
  ), bill as (
    select c.day, c.provider, c.canonical_model, sum(c.amount_usd) as cost,
           coalesce(sum(c.amount_usd) filter (where c.cost_type in ('web_search', 'code_execution')), 0) as fees
      from private.provider_billed_cost_daily c
      join providers p on p.provider = c.provider
     where c.org_id = reconcile.org and c.day between reconcile.first_day and reconcile.last_day and c.day < p.through
     group by 1, 2, 3
  ), cells as (
    select day, provider, canonical_model from steps
    union select day, provider, canonical_model from tracked
    union select day, provider, canonical_model from billed
    union select day, provider, canonical_model from bill
  )
  select k.day, k.provider, k.canonical_model,
         coalesce(t.requests, 0) as tracked_requests, coalesce(t.unpriced_requests, 0) as tracked_unpriced_requests,
         coalesce(t.input, 0) as tracked_input, coalesce(t.cached, 0) as tracked_cached,
         coalesce(t.cache_write, 0) as tracked_cache_write, coalesce(t.output, 0) as tracked_output,
         coalesce(t.reasoning, 0) as tracked_reasoning, coalesce(t.batch, 0) as tracked_batch,
         coalesce(t.cost, 0) as tracked_cost,
         coalesce(b.requests, 0) as billed_requests, coalesce(b.input, 0) as billed_input,
         coalesce(b.cached, 0) as billed_cached, coalesce(b.cache_write, 0) as billed_cache_write,
         coalesce(b.output, 0) as billed_output, b.reasoning as billed_reasoning, coalesce(b.batch, 0) as billed_batch,
         coalesce(b.web_search, 0) as billed_web_search, coalesce(x.cost, 0) as billed_cost,
         coalesce(x.fees, 0) as fees,
         coalesce(s.tier_moves, 0) + coalesce(s.tier_price, 0) as batch_flex,
         coalesce(s.window_moves, 0) + coalesce(s.long_price, 0) as long_context,
         coalesce(s.cache_moves, 0) + coalesce(s.cache_price, 0) as cache,
         coalesce(s.unpriced, 0) as unpriced, coalesce(s.price_change, 0) as price_change,
         coalesce(s.billed_rounding, 0) as billed_rounding,
         coalesce(s.ours_at_our_prices, 0) - coalesce(t.cost, 0) as ours_rounding,
         coalesce(s.volume, 0) as volume, coalesce(s.volume, 0) as volume_left, 0::numeric as timing,
         null::date as timing_with,
         s.cached_moved, s.written_moved, s.tier_tokens_moved, s.long_tokens_moved,
         coalesce(s.our_prices, '{}') as our_prices, coalesce(s.billed_prices, '{}') as billed_prices
    from cells k
    left join steps s using (day, provider, canonical_model)
    left join tracked t on t.day = k.day and t.provider = k.provider and t.canonical_model is not distinct from k.canonical_model
    left join billed b on b.day = k.day and b.provider = k.provider and b.canonical_model is not distinct from k.canonical_model
    left join bill x on x.day = k.day and x.provider = k.provider and x.canonical_model is not distinct from k.canonical_model;

  -- ------------------------------------------------------------ timing: volume carried across midnight
  for series in select c.provider, c.canonical_model, array_agg(c.day order by c.day) as days,
                       array_agg(c.volume order by c.day) as volumes
                  from pg_temp.rc_cells c group by c.provider, c.canonical_model loop
    update pg_temp.rc_cells c
       set timing = x.timing, volume_left = c.volume - x.timing,
           timing_with = case when x.timing < 0 then c.day + 1 when x.timing > 0 then c.day - 1 end
      from unnest(series.days, private.reconciliation_timing(series.days, series.volumes)) x (day, timing)
     where c.provider = series.provider and c.canonical_model is not distinct from series.canonical_model
       and c.day = x.day;
  end loop;

  -- ------------------------------------------------------------ store
  delete from private.reconciliation_causes r
   where r.org_id = reconcile.org and r.day between reconcile.first_day and reconcile.last_day;
  delete from private.reconciliation_daily r
   where r.org_id = reconcile.org and r.day between reconcile.first_day and reconcile.last_day;

  insert into private.reconciliation_daily (
    org_id, day, provider, canonical_model, tracked_requests, tracked_unpriced_requests, tracked_input_tokens,
    tracked_cached_tokens, tracked_cache_write_tokens, tracked_output_tokens, tracked_reasoning_tokens,
    tracked_batch_tokens, tracked_cost_usd, billed_requests, billed_input_tokens, billed_cached_tokens,
    billed_cache_write_tokens, billed_output_tokens, billed_reasoning_tokens, billed_batch_tokens,
    billed_web_search_requests, billed_cost_usd, gap_usd, our_prices, billed_prices)
  select reconcile.org, c.day, c.provider, c.canonical_model, c.tracked_requests, c.tracked_unpriced_requests,
         c.tracked_input, c.tracked_cached, c.tracked_cache_write, c.tracked_output, c.tracked_reasoning,
         c.tracked_batch, c.tracked_cost, c.billed_requests, c.billed_input, c.billed_cached, c.billed_cache_write,
         c.billed_output, c.billed_reasoning, c.billed_batch, c.billed_web_search, c.billed_cost,
         c.billed_cost - c.tracked_cost, c.our_prices, c.billed_prices
    from pg_temp.rc_cells c;
  get diagnostics cells = row_count;

  -- Every cause but unexplained from its rule; unexplained is what the gap has left, so the amounts of a
  -- row add up to its gap exactly.
  insert into private.reconciliation_causes (org_id, day, provider, canonical_model, cause, amount_usd, details)
  with ruled as (
    select c.day, c.provider, c.canonical_model, x.cause, round(x.amount, 9) as amount, x.details
      from pg_temp.rc_cells c
     cross join lateral (values
       ('untracked_traffic', greatest(c.volume_left, 0), '{}'::jsonb),
       ('unpriced_model', c.unpriced, jsonb_build_object('requests', c.tracked_unpriced_requests)),
       ('price_change', c.price_change, jsonb_build_object('our_mtok', c.our_prices, 'billed_mtok', c.billed_prices)),
       ('cache_accounting', c.cache, jsonb_strip_nulls(jsonb_build_object(
          'cached_tokens_moved', round(c.cached_moved), 'cache_write_tokens_moved', round(c.written_moved),
          'our_mtok', c.our_prices, 'billed_mtok', c.billed_prices))),
       ('batch_flex_discount', c.batch_flex, jsonb_strip_nulls(jsonb_build_object('tokens_moved', round(c.tier_tokens_moved)))),
       ('long_context', c.long_context, jsonb_strip_nulls(jsonb_build_object('tokens_moved', round(c.long_tokens_moved)))),
       ('tool_fees', c.fees, jsonb_build_object('web_search_requests', c.billed_web_search)),
       -- our stored costs against our prices for the same tokens: rounding when within half a cent
       ('rounding', c.billed_rounding + case when abs(c.ours_rounding) <= 0.005 + 0.0000001 * c.tracked_requests
                                             then -c.ours_rounding else 0 end, '{}'::jsonb),
       ('timing', c.timing, jsonb_strip_nulls(jsonb_build_object('offset_by', c.timing_with)))
     ) x (cause, amount, details)
  ), rest as (
    select c.day, c.provider, c.canonical_model,
           (c.billed_cost - c.tracked_cost)
           - coalesce((select sum(r.amount) from ruled r
                        where r.day = c.day and r.provider = c.provider
                          and r.canonical_model is not distinct from c.canonical_model), 0) as amount,
           jsonb_build_object('tracked_not_billed', round(least(c.volume_left, 0), 9)) as details
      from pg_temp.rc_cells c
  ), booked as (
    -- what the rules leave below a millionth of a dollar is our own arithmetic's rounding, not a gap
    select r.day, r.provider, r.canonical_model, r.cause,
           r.amount + case when r.cause = 'rounding' and abs(x.amount) < 0.000001 then x.amount else 0 end as amount,
           r.details
      from ruled r
      join rest x on x.day = r.day and x.provider = r.provider and x.canonical_model is not distinct from r.canonical_model
    union all
    select x.day, x.provider, x.canonical_model, 'unexplained', x.amount, x.details
      from rest x where abs(x.amount) >= 0.000001
  )
  select reconcile.org, a.day, a.provider, a.canonical_model, a.cause, a.amount, a.details
    from booked a
   where a.amount <> 0;

  -- Untracked traffic is named by the provider's keys (or projects) whose billed amounts, at the day's
  -- billed prices, best make it up (the closest subset of the twelve largest).
  for cell in select r.day, r.provider, r.canonical_model, r.amount_usd from private.reconciliation_causes r
               where r.org_id = reconcile.org and r.day between reconcile.first_day and reconcile.last_day
                 and r.cause = 'untracked_traffic' loop
    with usage as (
      select b.api_key_id, b.project_id, t.category, private.reconciliation_tier(b.service_tier, b.batch) as tier,
             private.reconciliation_context(b.context_window) as ctx, t.tokens
        from private.provider_billed_usage_daily b
       cross join lateral (values ('input', b.input_tokens), ('cached', b.cached_input_tokens),
                                  ('cache_write', b.cache_write_tokens), ('output', b.output_tokens)) t (category, tokens)
       where b.org_id = reconcile.org and b.day = cell.day and b.provider = cell.provider
         and b.canonical_model is not distinct from cell.canonical_model
    ), dim as (
      select case when bool_or(u.api_key_id is not null) then 'api_key_id'
                  when bool_or(u.project_id is not null) then 'project_id' end as name from usage u
    ), groups as (
      select case d.name when 'api_key_id' then u.api_key_id else u.project_id end as id,
             sum(u.tokens * s.pi) as value
        from usage u cross join dim d
        join pg_temp.rc_steps s on s.day = cell.day and s.provider = cell.provider
         and s.canonical_model is not distinct from cell.canonical_model
         and s.category = u.category and s.tier = u.tier and s.ctx = u.ctx
       where d.name is not null
       group by 1
    ), top as (
      select g.id, g.value, (row_number() over (order by g.value desc, g.id) - 1)::integer as bit
        from groups g where g.value > 0 order by g.value desc, g.id limit 12
    ), subsets as (
      select m.mask, sum(t.value) as value, count(*) as size
        from generate_series(1, (1 << (select count(*) from top)::integer) - 1) m (mask)
        join top t on (m.mask >> t.bit) & 1 = 1
       group by m.mask
    ), pick as (
      select s.mask, s.value from subsets s order by abs(s.value - cell.amount_usd), s.size, s.mask limit 1
    )
    select (select d.name from dim d) as dim,
           jsonb_agg(jsonb_build_object('id', t.id, 'amount', round(t.value * cell.amount_usd / p.value, 6))
                     order by t.value desc) as names,
           p.value as fit
      into best
      from pick p join top t on (p.mask >> t.bit) & 1 = 1
     group by p.value;
    if best.dim is not null then
      update private.reconciliation_causes r
         set details = jsonb_build_object('named_by', best.dim, 'names', best.names,
                                          'billed_by_names', round(best.fit, 6))
       where r.org_id = reconcile.org and r.day = cell.day and r.provider = cell.provider
         and r.canonical_model is not distinct from cell.canonical_model and r.cause = 'untracked_traffic';
    end if;
  end loop;

  return jsonb_build_object('org_id', reconcile.org, 'first_day', reconcile.first_day, 'last_day', reconcile.last_day,
                            'cells', cells);
end
$$;
comment on function private.reconcile(uuid, date, date) is
  'Rewrite org''s reconciliation for [first_day, last_day]: tracked against billed per day, provider and model, '
  'the gap split into the fixed causes (amounts add up to the gap). Days the reports do not cover yet are skipped.';

