-- Reconciliation: timing counted in tokens, and tier, window and cache moves as the least transfer.
--
-- Two causes on one model's day were split wrongly between each other. The tier, window and cache steps
-- re-split our whole total by the provider's shares, so when a day also lacked (or had extra) tokens for
-- timing, a share of those tokens was moved into another tier or cache category too: calls tracked before
-- midnight and billed after it, on a day with batch calls tracked without their tier, showed partly as a
-- batch discount. And timing was paired in dollars at each day's billed price, so across a price step the
-- two sides of the same calls did not match and the difference went to untracked traffic or unexplained.
--
-- What tells them apart in the data:
--   - timing moves whole calls across midnight: the same tokens, in the same category, tier and window,
--     leave one day and arrive on the next. The tier, window and cache moves never change a day's input
--     tokens (uncached, cached and written together) or output tokens, so timing is paired on those two
--     totals, in tokens, before anything else; the tokens are placed in the classes of the calls that
--     crossed (our calls closest to that midnight) and valued at each day's own billed prices.
--   - untracked traffic comes through keys (or projects) of its own: where the day's surplus of billed
--     tokens, timing aside, is exactly what some keys billed, those keys' tokens, in the tiers and cache
--     categories they were billed in, are that traffic (batch calls we tracked without their tier on the
--     same day would otherwise hide inside it).
--   - a tier, window or cache move is a transfer within one day's category (or input) total: only the
--     part of the differences that offsets between classes is moved (the least transfer), and what is
--     left over is volume, of one sign, in the classes that carry it.

-- The part of a class's difference (billed - ours) that a least transfer within its group moves: the
-- group's gains and losses offset up to the smaller of the two, shared in proportion to each difference.
create or replace function private.reconciliation_transfer(difference numeric, gains numeric, losses numeric)
returns numeric
language sql immutable parallel safe set search_path = '' as $$
  select case when reconciliation_transfer.difference > 0
                then reconciliation_transfer.difference * least(reconciliation_transfer.gains, reconciliation_transfer.losses)
                     / reconciliation_transfer.gains
              when reconciliation_transfer.difference < 0
                then reconciliation_transfer.difference * least(reconciliation_transfer.gains, reconciliation_transfer.losses)
                     / reconciliation_transfer.losses
              else 0 end
$$;
comment on function private.reconciliation_transfer(numeric, numeric, numeric) is
  'The part of a class''s difference a least transfer within its group moves (gains and losses: the group''s '
  'positive and negative differences, summed as positive numbers).';
revoke all on function private.reconciliation_transfer(numeric, numeric, numeric) from public;
grant execute on function private.reconciliation_transfer(numeric, numeric, numeric) to service_role;

-- The tokens one model's input (or output) totals carry across midnight, per day and class: the totals'
-- differences (billed - ours, per day) are paired across days (private.reconciliation_timing, in tokens)
-- and each crossing is placed in the classes of our calls closest to that midnight (the last ones of the
-- day before for calls billed after midnight, the first ones of the day after for calls billed before
-- it), as many of them as the crossing carries. Positive: billed that day, tracked on the neighbouring
-- day; negative: tracked that day, billed on the neighbouring day.
create or replace function private.reconciliation_timing_classes(org uuid, provider text, canonical_model text,
                                                                 family text, days date[], differences numeric[])
returns table (day date, category text, tier text, ctx text, tokens numeric)
language sql stable set search_path = '' set jit = off as $$
  with crossings as (
    -- the tokens crossing the midnight after each day: positive forward (tracked that day, billed the
    -- next), negative backward; a run of consecutive days sums to zero, so the running sum restarts
    select x.day, -sum(x.timing) over (order by x.day) as flow
      from unnest(reconciliation_timing_classes.days,
                  private.reconciliation_timing(reconciliation_timing_classes.days,
                                                reconciliation_timing_classes.differences)) x (day, timing)
  ), edges as (
    select e.day, abs(e.flow) as flow, e.flow > 0 as forward,
           case when e.flow > 0 then e.day else e.day + 1 end as tracked_on,
           case when e.flow > 0 then e.day + 1 else e.day end as billed_on
      from crossings e where e.flow <> 0
  ), reports as (
    select exists (select 1 from private.provider_billed_usage u
                    where u.org_id = reconciliation_timing_classes.org
                      and u.provider = reconciliation_timing_classes.provider
                      and u.context_window is not null) as context
  ), calls as (
    -- our calls of the tracked day, from the midnight crossed inwards, and the tokens before each
    select e.day, e.flow, e.tracked_on, e.billed_on, private.reconciliation_tier(u.service_tier) as tier,
           case when r.context and u.input_tokens > private.reconciliation_long_context_tokens()
                then 'long' else 'short' end as ctx,
           u.input_tokens - u.cached_tokens - u.cache_write_tokens as input, u.cached_tokens as cached,
           u.cache_write_tokens as cache_write, u.output_tokens as output, w.tokens,
           coalesce(sum(w.tokens) over (
             partition by e.day
             order by case when e.forward then u.occurred_at end desc, case when not e.forward then u.occurred_at end,
                      u.request_id
             rows between unbounded preceding and 1 preceding), 0) as before
      from edges e
     cross join reports r
      join public.usage_records u
        on u.org_id = reconciliation_timing_classes.org
       and lower(btrim(u.provider)) = reconciliation_timing_classes.provider
       and u.canonical_model is not distinct from reconciliation_timing_classes.canonical_model
       and u.occurred_at >= (e.tracked_on::timestamp at time zone 'UTC')
       and u.occurred_at < ((e.tracked_on + 1)::timestamp at time zone 'UTC')
     cross join lateral (
       select case when reconciliation_timing_classes.family = 'output' then u.output_tokens
                   else u.input_tokens end::numeric as tokens) w
  ), crossed as (
    -- the calls that crossed: as many as the crossing's tokens (the last one in part)
    select c.day, c.flow, c.tracked_on, c.billed_on, k.category, c.tier, c.ctx,
           sum(k.tokens * least(c.tokens, c.flow - c.before) / c.tokens) as tokens
      from calls c
     cross join lateral (values ('input', c.input), ('cached', c.cached), ('cache_write', c.cache_write),
                                ('output', c.output)) k (category, tokens)
     where c.before < c.flow and c.tokens > 0
       and (k.category = 'output') = (reconciliation_timing_classes.family = 'output')
     group by 1, 2, 3, 4, 5, 6, 7
  ), scaled as (
    -- the whole crossing, also where our calls of the day carry fewer tokens than it
    select x.*, x.tokens * x.flow / sum(x.tokens) over (partition by x.day) as moved from crossed x
  )
  select m.day, m.category, m.tier, m.ctx, sum(m.tokens)
    from (select s.tracked_on as day, s.category, s.tier, s.ctx, -s.moved as tokens from scaled s
          union all
          select s.billed_on, s.category, s.tier, s.ctx, s.moved from scaled s) m
   group by 1, 2, 3, 4
$$;
comment on function private.reconciliation_timing_classes(uuid, text, text, text, date[], numeric[]) is
  'Tokens of one model''s input or output carried across midnight, per day, category, tier and window, from the '
  'days'' differences (billed - ours): positive when billed that day and tracked on a neighbouring day.';
revoke all on function private.reconciliation_timing_classes(uuid, text, text, text, date[], numeric[]) from public;
grant execute on function private.reconciliation_timing_classes(uuid, text, text, text, date[], numeric[])
  to service_role;

-- The classes of the traffic billed under keys we never track: when a day's surplus of billed tokens
-- (input and output, timing aside) is exactly what some of the provider's API keys (or projects) billed
-- for the model that day, those keys' tokens are that traffic, in the tiers, windows and cache categories
-- they were billed in (so a batch discount on the same day is not read into them). No rows when no set of
-- keys makes up the surplus within half a percent: the surplus is then left to the least transfers.
create or replace function private.reconciliation_untracked_classes(org uuid, day date, provider text,
                                                                    canonical_model text, input numeric,
                                                                    output numeric)
returns table (category text, tier text, ctx text, tokens numeric)
language sql stable set search_path = '' as $$
  with usage as (
    select b.api_key_id, b.project_id, t.category, private.reconciliation_tier(b.service_tier, b.batch) as tier,
           private.reconciliation_context(b.context_window) as ctx, t.tokens
      from private.provider_billed_usage_daily b
     cross join lateral (values ('input', b.input_tokens), ('cached', b.cached_input_tokens),
                                ('cache_write', b.cache_write_tokens), ('output', b.output_tokens)) t (category, tokens)
     where b.org_id = reconciliation_untracked_classes.org and b.day = reconciliation_untracked_classes.day
       and b.provider = reconciliation_untracked_classes.provider
       and b.canonical_model is not distinct from reconciliation_untracked_classes.canonical_model
  ), dim as (
    select case when bool_or(u.api_key_id is not null) then 'api_key_id'
                when bool_or(u.project_id is not null) then 'project_id' end as name from usage u
  ), keyed as (
    select case d.name when 'api_key_id' then u.api_key_id else u.project_id end as id, u.category, u.tier, u.ctx,
           u.tokens
      from usage u cross join dim d where d.name is not null
  ), groups as (
    select k.id, coalesce(sum(k.tokens) filter (where k.category <> 'output'), 0) as input,
           coalesce(sum(k.tokens) filter (where k.category = 'output'), 0) as output
      from keyed k where k.id is not null group by k.id
  ), top as (
    select g.*, (row_number() over (order by g.input + g.output desc, g.id) - 1)::integer as bit
      from groups g where g.input + g.output > 0 order by g.input + g.output desc, g.id limit 12
  ), subsets as (
    select m.mask, sum(t.input) as input, sum(t.output) as output, count(*) as size
      from generate_series(1, (1 << (select count(*) from top)::integer) - 1) m (mask)
      join top t on (m.mask >> t.bit) & 1 = 1
     group by m.mask
  ), pick as (
    select s.mask from subsets s
     where abs(s.input - reconciliation_untracked_classes.input) + abs(s.output - reconciliation_untracked_classes.output)
           <= 0.005 * (reconciliation_untracked_classes.input + reconciliation_untracked_classes.output)
     order by abs(s.input - reconciliation_untracked_classes.input)
              + abs(s.output - reconciliation_untracked_classes.output), s.size, s.mask
     limit 1
  )
  select k.category, k.tier, k.ctx, sum(k.tokens)::numeric
    from keyed k join top t on t.id = k.id join pick p on (p.mask >> t.bit) & 1 = 1
   group by 1, 2, 3
$$;
comment on function private.reconciliation_untracked_classes(uuid, date, text, text, numeric, numeric) is
  'The billed tokens per category, tier and window of the keys (or projects) whose billed input and output make up '
  'a day''s surplus of billed tokens of a model within half a percent; no rows when none do.';
revoke all on function private.reconciliation_untracked_classes(uuid, date, text, text, numeric, numeric) from public;
grant execute on function private.reconciliation_untracked_classes(uuid, date, text, text, numeric, numeric)
  to service_role;

create or replace function private.reconcile(org uuid, first_day date, last_day date) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  cell record;
  best record;
  cells integer;
begin
  -- one reconciliation of an organization at a time (the job and a re-price may race)
  perform pg_advisory_xact_lock(hashtext('tokentra.reconcile'), hashtext(reconcile.org::text));
  if to_regclass('pg_temp.rc_steps') is not null then
    drop table pg_temp.rc_steps, pg_temp.rc_cells;
  end if;
  if to_regclass('pg_temp.rc_classes') is not null then
    drop table pg_temp.rc_classes;
  end if;

  -- ------------------------------------------------------------ token moves, per class
  -- From ours to the bill: timing (tokens carried across midnight), the traffic of keys we never track
  -- where it makes up the day's surplus exactly, then the least transfer between tiers, between context
  -- windows and between input categories; what is left (with that traffic) is volume.
  create temp table rc_classes on commit drop as
  select x.*, x.ours_priced + x.ours_unpriced as ours,
         case when x.category = 'output' then 'output' else 'input' end as family, 0::numeric as timed,
         0::numeric as keyed
    from private.reconciliation_classes(reconcile.org, reconcile.first_day, reconcile.last_day) x;

  with series as (
    select c.provider, c.canonical_model, c.family, array_agg(c.day order by c.day) as days,
           array_agg(c.difference order by c.day) as differences
      from (select x.day, x.provider, x.canonical_model, x.family, sum(x.billed - x.ours) as difference
              from pg_temp.rc_classes x group by 1, 2, 3, 4) c
     group by 1, 2, 3
  ), moved as materialized (  -- each series once, not once per class updated
    select s.provider, s.canonical_model, t.*
      from series s
     cross join lateral private.reconciliation_timing_classes(reconcile.org, s.provider, s.canonical_model, s.family,
                                                              s.days, s.differences) t
  )
  update pg_temp.rc_classes x set timed = m.tokens
    from moved m
   where x.day = m.day and x.provider = m.provider and x.canonical_model is not distinct from m.canonical_model
     and x.category = m.category and x.tier = m.tier and x.ctx = m.ctx;

  with surplus as (
    select x.day, x.provider, x.canonical_model,
           sum(x.billed - x.ours - x.timed) filter (where x.family = 'input') as input,
           sum(x.billed - x.ours - x.timed) filter (where x.family = 'output') as output
      from pg_temp.rc_classes x group by 1, 2, 3
  ), keyed as materialized (  -- each day once, not once per class updated
    select s.day, s.provider, s.canonical_model, k.*
      from surplus s
     cross join lateral private.reconciliation_untracked_classes(reconcile.org, s.day, s.provider, s.canonical_model,
                                                                 s.input, s.output) k
     where s.input >= 0 and s.output >= 0 and s.input + s.output > 0
  )
  update pg_temp.rc_classes x set keyed = k.tokens
    from keyed k
   where x.day = k.day and x.provider = k.provider and x.canonical_model is not distinct from k.canonical_model
     and x.category = k.category and x.tier = k.tier and x.ctx = k.ctx;

  create temp table rc_steps on commit drop as
  with c as (  -- o0: ours after timing; target: the bill without the untracked keys' traffic
    select x.*, coalesce(x.billed_price, 0) as pi, x.ours + x.timed as o0, x.billed - x.keyed as target
      from pg_temp.rc_classes x
  ), t1 as (  -- tiers, within a category and window
    select c.*, c.o0 + private.reconciliation_transfer(c.target - c.o0, sum(greatest(c.target - c.o0, 0)) over w,
                                                       sum(greatest(c.o0 - c.target, 0)) over w) as o1
      from c window w as (partition by c.day, c.provider, c.canonical_model, c.category, c.ctx)
  ), t2 as (  -- context windows, within a category and tier
    select t1.*, t1.o1 + private.reconciliation_transfer(t1.target - t1.o1, sum(greatest(t1.target - t1.o1, 0)) over w,
                                                         sum(greatest(t1.o1 - t1.target, 0)) over w) as o2
      from t1 window w as (partition by t1.day, t1.provider, t1.canonical_model, t1.category, t1.tier)
  ), t3 as (  -- cache: between uncached input, cache reads and cache writes, within a tier and window
    select t2.*, t2.o2 + case when t2.category = 'output' then 0 else private.reconciliation_transfer(
                   t2.target - t2.o2,
                   sum(greatest(t2.target - t2.o2, 0)) filter (where t2.category <> 'output') over w,
                   sum(greatest(t2.o2 - t2.target, 0)) filter (where t2.category <> 'output') over w) end as o3
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
           sum((s.o1 - s.o0) * s.pi) as tier_moves, sum((s.o2 - s.o1) * s.pi) as window_moves,
           sum((s.o3 - s.o2) * s.pi) as cache_moves, sum((s.billed - s.o3) * s.pi) as volume_left,
           sum(s.timed * s.pi) as timing,
           sum(s.unpriced) as unpriced, sum(s.long_price) as long_price,
           sum(s.price_diff) filter (where s.price_cause = 'price_change') as price_change,
           sum(s.price_diff) filter (where s.price_cause = 'cache_accounting') as cache_price,
           sum(s.price_diff) filter (where s.price_cause = 'batch_flex_discount') as tier_price,
           sum(s.rounding) as billed_rounding,
           sum(s.ours_priced * coalesce(s.our_price, 0)) as ours_at_our_prices,
           sum(s.o3 - s.o2) filter (where s.category = 'cached') as cached_moved,
           sum(s.o3 - s.o2) filter (where s.category = 'cache_write') as written_moved,
           sum(s.o1 - s.o0) filter (where s.tier <> 'standard') as tier_tokens_moved,
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
         coalesce(s.volume_left, 0) as volume_left, coalesce(s.timing, 0) as timing,
         case when s.timing < 0 then k.day + 1 when s.timing > 0 then k.day - 1 end as timing_with,
         s.cached_moved, s.written_moved, s.tier_tokens_moved, s.long_tokens_moved,
         coalesce(s.our_prices, '{}') as our_prices, coalesce(s.billed_prices, '{}') as billed_prices
    from cells k
    left join steps s using (day, provider, canonical_model)
    left join tracked t on t.day = k.day and t.provider = k.provider and t.canonical_model is not distinct from k.canonical_model
    left join billed b on b.day = k.day and b.provider = k.provider and b.canonical_model is not distinct from k.canonical_model
    left join bill x on x.day = k.day and x.provider = k.provider and x.canonical_model is not distinct from k.canonical_model;

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

