-- Budget enforcement. Strict: reserve a call's maximum cost before it is made, admitted only while
-- spent + reserved + requested <= limit for every hard budget covering it (reserve_budget), and
-- commit the reservation when the event reporting the call is stored (commit_budget_reservations).
-- Eventual: answer whether the attribution's hard budgets still have room (check_budgets); overshoot
-- is then bounded by concurrent calls times the largest call. All run as the service for an API key's
-- organization; none is granted to users.
-- `jit = off` on the per-request functions (here, in budget_spend and budget_state): the planner's
-- guesses for the rollup views and set-returning functions otherwise trigger JIT compilation, about
-- 0.4 s, for work that takes a few milliseconds.

-- ---------------------------------------------------------------- coverage
-- The enabled budgets of an organization covering one call's attribution. The call is matched the way
-- its usage row will be (see budget_covers): the key it is made with, its tags and its model.
create function private.budgets_covering(org uuid, key uuid, attribution jsonb, call_model text)
returns setof public.budgets
language sql stable rows 5 set search_path = '' as $$
  select b.*
    from public.budgets b
   cross join lateral private.budget_scope_match(b) m
   where b.org_id = org and b.enabled
     and case b.scope_type
           when 'user' then b.scope_id = attribution ->> 'user_id'
           else private.budget_covers(b.scope_type, m.tag_values, m.key_ids, attribution ->> 'team',
                                      attribution ->> 'project', call_model, attribution ->> 'feature', key)
         end
$$;
comment on function private.budgets_covering(uuid, uuid, jsonb, text) is
  'Enabled budgets of org covering a call made with API key `key`, tags {team, project, feature, user_id} and model.';

-- Spend and holds of covering budgets, now. Holds past their TTL no longer count, swept or not.
create function private.covering_budget_room(org uuid, key uuid, attribution jsonb, call_model text)
returns table (budget_id uuid, hard_limit boolean, amount numeric, spent numeric, held numeric)
language sql stable rows 5 set search_path = '' set jit = off as $$
  select b.id, b.hard_limit, b.amount, private.budget_spend(b, p.period_start, p.period_end),
         coalesce((select sum(h.amount_usd) from private.budget_holds h
                    where h.budget_id = b.id and h.expires_at > now()), 0)
    from private.budgets_covering(org, key, attribution, call_model) b
   cross join lateral private.budget_current_period(b) p
$$;
comment on function private.covering_budget_room(uuid, uuid, jsonb, text) is
  'For each budget covering a call: whether it is hard, its amount, current-period spend and open holds.';

-- ---------------------------------------------------------------- the price of a call not yet made
-- The most a call can cost: its input plus max_tokens (or the model's output limit) of output, at the
-- model's price; at the provider's dearest known price when the model is unknown.
create function private.max_call_cost(provider text, model text, input_tokens bigint, max_tokens bigint,
                                      default_max_output bigint)
returns numeric
language plpgsql stable security definer set search_path = '' as $$
declare
  window_size integer;
  out_tokens bigint;
  cost numeric;
begin
  select m.context_window into window_size
    from private.resolve_price_model(provider, model) r
    join private.price_models m on m.provider_id = r.provider_id and m.model_id = r.model_id;
  out_tokens := coalesce(max_tokens, least(greatest(window_size - input_tokens, 1), default_max_output),
                         default_max_output);
  select c.cost_usd into cost
    from private.usage_cost(provider, model, now(), input_tokens, out_tokens, 0, 0, 0, null) c;
  if cost is null then
    select (input_tokens * c.input_mtok + out_tokens * c.output_mtok) * 0.000001 into cost
      from private.conservative_mtok(provider) c;
  end if;
  return cost;
end
$$;
comment on function private.max_call_cost(text, text, bigint, bigint, bigint) is
  'Upper bound of a call''s cost (USD): input + max_tokens (or the model''s output limit, capped at '
  'default_max_output) at its price, or at the provider''s dearest price when the model is unpriced.';

-- ---------------------------------------------------------------- strict: reserve
-- One transaction: lock the covering hard budgets (advisory locks in id order, so concurrent
-- reservations queue per budget and never deadlock), then read spend and holds in a fresh snapshot
-- and admit the call only if it fits every one of them. Answers the tightest budget's remaining room.
create function private.reserve_budget(org uuid, key uuid, provider text, model text, input_tokens bigint,
                                       max_tokens bigint, attribution jsonb, ttl interval,
                                       default_max_output bigint default 32768)
returns table (allowed boolean, reservation_id uuid, remaining numeric, budget_id uuid, amount_usd numeric)
language plpgsql volatile rows 1 set search_path = '' set jit = off as $$
declare
  cost numeric := private.max_call_cost(provider, model, input_tokens, max_tokens, default_max_output);
  room jsonb;
  denied record;
  tightest record;
  new_id uuid;
  expiry timestamptz := now() + ttl;
begin
  perform pg_advisory_xact_lock(hashtextextended('tokentra.budget:' || b.id::text, 0))
     from (select c.id from private.budgets_covering(org, key, attribution, model) c
            where c.hard_limit order by c.id) b;
  -- A new statement, so a new snapshot: reservations and usage committed while we waited count.
  select coalesce(jsonb_agg(jsonb_build_object('budget_id', r.budget_id, 'hard', r.hard_limit,
                                               'room', r.amount - r.spent - r.held)), '[]')
    into room from private.covering_budget_room(org, key, attribution, model) r;

  select x.budget_id, x.room into denied
    from jsonb_to_recordset(room) x (budget_id uuid, hard boolean, room numeric)
   where x.hard and x.room < cost order by x.room limit 1;
  if found then
    return query select false, null::uuid, round(greatest(denied.room, 0), 6), denied.budget_id, round(cost, 6);
    return;
  end if;
  if jsonb_path_exists(room, '$[*] ? (@.hard == true)') then
    insert into private.budget_reservations (org_id, api_key_id, provider, model, amount_usd, attribution, expires_at)
    values (org, key, provider, model, cost, attribution, expiry)
    returning id into new_id;
    insert into private.budget_holds (reservation_id, budget_id, org_id, amount_usd, expires_at)
    select new_id, x.budget_id, org, cost, expiry
      from jsonb_to_recordset(room) x (budget_id uuid, hard boolean) where x.hard;
  end if;
  -- Room left after this call, on the tightest covering budget (soft ones included, for information).
  select x.budget_id, x.room - case when x.hard then cost else 0 end as room into tightest
    from jsonb_to_recordset(room) x (budget_id uuid, hard boolean, room numeric)
   order by 2 limit 1;
  -- No covering budget: allowed, nothing reserved, no room to report.
  return query select true, new_id, case when tightest.room is not null then round(greatest(tightest.room, 0), 6) end,
                      tightest.budget_id, round(cost, 6);
end
$$;
comment on function private.reserve_budget(uuid, uuid, text, text, bigint, bigint, jsonb, interval, bigint) is
  'Strict mode: reserve a call''s maximum cost against every covering hard budget, admitted only while '
  'spent + reserved + requested <= amount for each; answers allowed, reservation id, remaining room, tightest budget.';

-- ---------------------------------------------------------------- strict: commit, expire
-- Called by ingest after storing events that carry a reservation id: each open reservation is closed
-- once (status guard), its holds released; the call's actual cost now counts through the rollups.
-- A retry of the same event finds the reservation closed and changes nothing.
create function private.commit_budget_reservations(org uuid, reports jsonb)
returns integer
language sql volatile set search_path = '' as $$
  with reported as (
    select distinct on (x.reservation_id) x.reservation_id, x.request_id
      from jsonb_to_recordset(reports) as x (reservation_id uuid, request_id text)
     where x.reservation_id is not null
  ), closed as (
    update private.budget_reservations r
       set status = 'committed', closed_at = now(), request_id = p.request_id,
           actual_cost_usd = (select u.cost_usd from private.usage_request_ids c
                                join public.usage_records u on u.org_id = c.org_id and u.occurred_at = c.occurred_at
                                                           and u.request_id = c.request_id
                               where c.org_id = org and c.request_id = p.request_id limit 1)
      from reported p
     where r.id = p.reservation_id and r.org_id = org and r.status = 'open'
    returning r.id
  ), released as (
    delete from private.budget_holds h using closed c where h.reservation_id = c.id
  )
  select count(*)::integer from closed
$$;
comment on function private.commit_budget_reservations(uuid, jsonb) is
  'Commit the open reservations reported by stored events ([{reservation_id, request_id}]) exactly once, '
  'releasing their holds; returns how many were committed.';

-- The TTL sweep: reservations whose call was never reported (the process died between reserve and
-- report) release their holds. Admission already ignores expired holds; this closes the rows.
create function private.sweep_budget_reservations() returns integer
language sql volatile set search_path = '' as $$
  with expired as (
    update private.budget_reservations r set status = 'expired', closed_at = now()
     where r.id in (select x.id from private.budget_reservations x
                     where x.status = 'open' and x.expires_at <= now()
                     order by x.expires_at limit 10000 for update skip locked)
    returning r.id
  ), released as (
    delete from private.budget_holds h using expired e where h.reservation_id = e.id
  )
  select count(*)::integer from expired
$$;
comment on function private.sweep_budget_reservations() is
  'Expire open reservations past their TTL and release their holds; returns how many expired.';

-- ---------------------------------------------------------------- eventual: check
-- Whether a call with this attribution may go ahead: no covering hard budget is used up. Answers the
-- denying budget, or the one with the least room left.
create function private.check_budgets(org uuid, key uuid, attribution jsonb, call_model text)
returns table (allowed boolean, remaining numeric, budget_id uuid, status text)
language sql stable rows 1 set search_path = '' set jit = off as $$
  with room as (
    select r.*, r.amount - r.spent - r.held as left_usd,
           case when r.spent >= r.amount then 'exceeded' else 'ok' end as state
      from private.covering_budget_room(org, key, attribution, call_model) r
  )
  select coalesce(not bool_or(r.hard_limit and r.left_usd <= 0), true),
         case when count(*) > 0 then round(greatest(min(r.left_usd), 0), 6) end,
         (select x.budget_id from room x order by (x.hard_limit and x.left_usd <= 0) desc, x.left_usd limit 1),
         coalesce((select x.state from room x order by x.left_usd limit 1), 'ok')
    from room r
$$;
comment on function private.check_budgets(uuid, uuid, jsonb, text) is
  'Eventual mode: allowed unless a covering hard budget has no room; remaining room and the tightest budget.';

-- ---------------------------------------------------------------- ingest response headers
-- The budget status of a stored batch: the worst over the budgets covering any of its distinct
-- attributions (exceeded > warning > ok), with that budget's id and remaining room.
create function private.batch_budget_status(org uuid, key uuid, attributions jsonb)
returns table (status text, budget_id uuid, remaining numeric)
language sql stable rows 1 set search_path = '' set jit = off as $$
  with budgets as (
    select distinct on (b.id) b
      from jsonb_array_elements(attributions) a(attr)
     cross join lateral private.budgets_covering(org, key, a.attr, a.attr ->> 'model') b
  ), states as (
    select (x.b).id as id, s.status, s.remaining
      from budgets x cross join lateral private.budget_state(x.b) s
  )
  select s.status, s.id, s.remaining from states s
   order by case s.status when 'exceeded' then 0 when 'warning' then 1 else 2 end, s.remaining
   limit 1
$$;
comment on function private.batch_budget_status(uuid, uuid, jsonb) is
  'Worst status (exceeded > warning > ok) among budgets covering a batch''s attributions ([{team, project, '
  'feature, user_id, model}]), with the budget and its remaining room; no row when none covers it.';

revoke all on function private.budgets_covering(uuid, uuid, jsonb, text),
  private.covering_budget_room(uuid, uuid, jsonb, text),
  private.max_call_cost(text, text, bigint, bigint, bigint),
  private.reserve_budget(uuid, uuid, text, text, bigint, bigint, jsonb, interval, bigint),
  private.commit_budget_reservations(uuid, jsonb), private.sweep_budget_reservations(),
  private.check_budgets(uuid, uuid, jsonb, text), private.batch_budget_status(uuid, uuid, jsonb) from public;
grant execute on function private.reserve_budget(uuid, uuid, text, text, bigint, bigint, jsonb, interval, bigint),
  private.commit_budget_reservations(uuid, jsonb), private.sweep_budget_reservations(),
  private.check_budgets(uuid, uuid, jsonb, text), private.batch_budget_status(uuid, uuid, jsonb) to service_role;
