-- The gateway admits most calls without a database round trip. A gateway process leases a chunk of
-- every hard budget covering a (key, attribution, model) at once (one reservation of kind 'lease', its
-- holds on each budget), admits calls against that chunk in memory, and gives back what it did not use.
-- Each admitted call is later carved out of its lease as a reservation of its own (kind 'call', the same
-- row the usage event commits), moving its amount from the lease's holds to the call's, so the holds of
-- leases and calls together never pass what the budgets admitted. A process that dies leaves its lease
-- to the TTL sweep, like any reservation.

alter table private.budget_reservations
  add column kind text not null default 'call' constraint kind_is_known check (kind in ('call', 'lease')),
  add column lease_id uuid references private.budget_reservations (id) on delete set null,
  add column retired_at timestamptz;
comment on column private.budget_reservations.kind is
  'call: one call''s maximum cost; lease: a chunk a gateway process admits calls against in memory.';
comment on column private.budget_reservations.lease_id is 'The lease a gateway call was admitted against.';
comment on column private.budget_reservations.retired_at is
  'When the gateway stopped admitting against this lease; it closes once its last admitted call is carved.';
create index budget_reservations_lease_idx on private.budget_reservations (lease_id) where lease_id is not null;

-- ---------------------------------------------------------------- price card
-- What the gateway needs to bound a call's cost in memory: the dearest input and output prices in force
-- now for the model (over its long-context tiers and daily windows, so the bound holds for any call),
-- its per-request fee and output window; the provider's dearest prices when the model is unknown.
-- exact: a single price applies, so input * input_mtok + output * output_mtok is what max_call_cost says.
create function private.gateway_price_card(provider text, model text)
returns table (input_mtok numeric, output_mtok numeric, request_usd numeric, context_window integer, exact boolean)
language plpgsql stable security definer rows 1 set search_path = '' set jit = off as $$
declare
  r record;
begin
  select x.provider_id, x.model_id into r from private.resolve_price(provider, model) x limit 1;
  if found then
    return query
    with current_rows as (
      select distinct on (q.daily_from, q.above_input_tokens) q.*
        from private.model_prices q
       where q.provider_id = r.provider_id and q.model_id = r.model_id and q.service_tier = ''
         and q.effective_from <= now()
       order by q.daily_from, q.above_input_tokens, q.effective_from desc
    )
    select max(coalesce(c.input_mtok, 0)), max(greatest(coalesce(c.output_mtok, 0), coalesce(c.output_reasoning_mtok, 0))),
           max(coalesce(c.requests_kcount, 0)) * 0.001,
           (select m.context_window from private.resolve_price_model(provider, model) rm
              join private.price_models m on m.provider_id = rm.provider_id and m.model_id = rm.model_id limit 1),
           count(*) = 1
      from current_rows c
    having count(*) > 0;
    if found then
      return;
    end if;
  end if;
  return query select c.input_mtok, c.output_mtok, 0::numeric, null::integer, false
                 from private.conservative_mtok(provider) c;
end
$$;
comment on function private.gateway_price_card(text, text) is
  'Dearest input/output USD per Mtok in force for a model (provider''s dearest when unknown), request fee, '
  'output window, and whether one price applies (then the bound equals max_call_cost).';

-- ---------------------------------------------------------------- give back
-- Give back `unused` of an open lease (what its process will not admit); with retire, the process admits
-- nothing more against it, and it closes once nothing is held (its admitted calls all carved).
create function private.gateway_return_lease(org uuid, lease uuid, unused numeric, retire boolean)
returns numeric
language plpgsql volatile set search_path = '' as $$
declare
  left_usd numeric;
begin
  update private.budget_reservations r
     set amount_usd = greatest(r.amount_usd - greatest(unused, 0), 0),
         retired_at = case when retire then coalesce(r.retired_at, now()) else r.retired_at end
   where r.id = lease and r.org_id = org and r.kind = 'lease' and r.status = 'open'
  returning r.amount_usd into left_usd;
  if not found then
    return null;
  end if;
  perform private.gateway_settle_lease(lease, left_usd);
  return left_usd;
end
$$;
comment on function private.gateway_return_lease(uuid, uuid, numeric, boolean) is
  'Give back the unused part of an open gateway lease (and retire it); answers what it still holds.';

-- A lease's holds follow its amount; a retired lease holding nothing is closed.
create function private.gateway_settle_lease(lease uuid, left_usd numeric) returns void
language sql volatile set search_path = '' as $$
  update private.budget_holds h set amount_usd = left_usd where h.reservation_id = lease;
  with closed as (
    update private.budget_reservations r set status = 'released', closed_at = now(), actual_cost_usd = 0
     where r.id = lease and r.status = 'open' and r.retired_at is not null and r.amount_usd <= 0
    returning r.id
  )
  delete from private.budget_holds h using closed c where h.reservation_id = c.id;
$$;
comment on function private.gateway_settle_lease(uuid, numeric) is
  'Set a lease''s holds to what it still holds; close it when retired and empty.';

-- ---------------------------------------------------------------- lease
-- One transaction under the covering hard budgets' locks (the same locks reserve_budget takes, so SDK
-- reservations and gateway leases queue together): give back the previous lease's unused part first, so
-- its room counts, then lease between `need` (one call's maximum cost; refused when even that does not
-- fit) and `want`, at most `share` of the tightest budget's room (near a budget's end, leases shrink to
-- single calls, so little room sits idle in another process). No hard budget: allowed, no lease.
create function private.gateway_lease(org uuid, key uuid, provider text, model text, attribution jsonb,
                                      need numeric, want numeric, share numeric, ttl interval,
                                      previous uuid default null, previous_unused numeric default 0)
returns table (allowed boolean, lease_id uuid, granted numeric, remaining numeric, budget_id uuid)
language plpgsql volatile rows 1 set search_path = '' set jit = off as $$
declare
  hard_room numeric;
  tight uuid;
  grant_usd numeric;
  new_id uuid;
  expiry timestamptz := now() + ttl;
begin
  if need is null or need < 0 or want < need or share <= 0 or share > 1 then
    raise exception 'need, want, share: 0 <= need <= want and 0 < share <= 1' using errcode = '22023';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('tokentra.budget:' || b.id::text, 0))
     from (select c.id from private.budgets_covering(org, key, attribution, model) c
            where c.hard_limit order by c.id) b;
  if previous is not null then
    perform private.gateway_return_lease(org, previous, previous_unused, true);
  end if;
  -- A new statement, so a new snapshot: what was committed while we waited counts.
  select r.amount - r.spent - r.held, r.budget_id into hard_room, tight
    from private.covering_budget_room(org, key, attribution, model) r
   where r.hard_limit order by 1 limit 1;
  if not found then
    return query select true, null::uuid, null::numeric, null::numeric, null::uuid;
    return;
  end if;
  if hard_room < need then
    return query select false, null::uuid, null::numeric, round(greatest(hard_room, 0), 6), tight;
    return;
  end if;
  grant_usd := trunc(least(hard_room, greatest(need, least(want, hard_room * share))), 12);
  insert into private.budget_reservations (org_id, api_key_id, provider, model, amount_usd, attribution, expires_at,
                                           kind)
  values (org, key, provider, model, grant_usd, attribution, expiry, 'lease')
  returning id into new_id;
  insert into private.budget_holds (reservation_id, budget_id, org_id, amount_usd, expires_at)
  select new_id, c.id, org, grant_usd, expiry
    from private.budgets_covering(org, key, attribution, model) c where c.hard_limit;
  return query select true, new_id, grant_usd, round(greatest(hard_room - grant_usd, 0), 6), tight;
end
$$;
comment on function private.gateway_lease(uuid, uuid, text, text, jsonb, numeric, numeric, numeric, interval, uuid,
                                          numeric) is
  'Lease part of every hard budget covering a gateway call (after giving back the previous lease''s unused '
  'part): between need and want, at most share of the tightest room; refused when need does not fit.';

-- ---------------------------------------------------------------- carve
-- Calls admitted against leases become reservations of their own before their usage is stored
-- ([{reservation_id, lease_id, amount_usd, provider, model, attribution}]): each inserted once (a retry
-- changes nothing), its amount moved from its lease's holds to its own, so the usage event commits it
-- like any reservation. A lease past its TTL holds nothing any more; its calls then hold nothing either.
create function private.gateway_carve_calls(org uuid, calls jsonb) returns integer
language plpgsql volatile set search_path = '' as $$
declare
  carved integer;
  touched uuid[];
  lease uuid;
begin
  with added as (
    insert into private.budget_reservations as r (id, org_id, api_key_id, provider, model, amount_usd, attribution,
                                                  expires_at, kind, lease_id)
    select x.reservation_id, org, l.api_key_id, x.provider, x.model, x.amount_usd, coalesce(x.attribution, '{}'),
           l.expires_at, 'call', l.id
      from jsonb_to_recordset(calls) x (reservation_id uuid, lease_id uuid, amount_usd numeric, provider text,
                                        model text, attribution jsonb)
      join private.budget_reservations l on l.id = x.lease_id and l.org_id = org and l.kind = 'lease'
    on conflict (id) do nothing
    returning r.id, r.lease_id, r.amount_usd
  ), call_holds as (
    insert into private.budget_holds (reservation_id, budget_id, org_id, amount_usd, expires_at)
    select a.id, h.budget_id, org, a.amount_usd, h.expires_at
      from added a
      join private.budget_reservations l on l.id = a.lease_id and l.status = 'open'
      join private.budget_holds h on h.reservation_id = l.id
  ), leases as (
    update private.budget_reservations r set amount_usd = greatest(r.amount_usd - s.total, 0)
      from (select a.lease_id, sum(a.amount_usd) as total from added a group by 1) s
     where r.id = s.lease_id and r.status = 'open'
    returning r.id
  )
  select (select count(*) from added), (select array_agg(l.id) from leases l) into carved, touched;
  foreach lease in array coalesce(touched, '{}') loop
    perform private.gateway_settle_lease(lease, (select r.amount_usd from private.budget_reservations r
                                                  where r.id = lease));
  end loop;
  return carved;
end
$$;
comment on function private.gateway_carve_calls(uuid, jsonb) is
  'Make gateway calls admitted against leases reservations of their own, once, moving their holds off the lease.';

-- ---------------------------------------------------------------- counters, synced in the background
-- Each gateway process counts requests, tokens and prompt repeats in memory and adds what it counted
-- here a few times a second; the answer is every process's totals for those windows, which the process
-- admits against until the next sync. reports: {windows: [{key_id, window_start, requests, tokens}],
-- prompts: [{key_id, prompt_hash, window_start, calls}], used: [key ids that made calls]}.
create function private.gateway_sync_counters(reports jsonb) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  windows jsonb;
  prompts jsonb;
begin
  with added as (
    insert into private.gateway_rate_windows as w (key_id, window_start, requests, tokens)
    select x.key_id, x.window_start, sum(coalesce(x.requests, 0)), sum(coalesce(x.tokens, 0))
      from jsonb_to_recordset(coalesce(reports -> 'windows', '[]')) x (key_id uuid, window_start timestamptz,
                                                                        requests integer, tokens bigint)
      join public.api_keys k on k.id = x.key_id
     group by 1, 2
    on conflict on constraint gateway_rate_windows_pkey do update
      set requests = w.requests + excluded.requests, tokens = w.tokens + excluded.tokens
    returning w.key_id, w.window_start, w.requests, w.tokens
  )
  select coalesce(jsonb_agg(to_jsonb(a)), '[]') into windows from added a;
  with added as (
    insert into private.gateway_prompt_repeats as p (key_id, prompt_hash, window_start, calls)
    select x.key_id, x.prompt_hash, x.window_start, sum(x.calls)
      from jsonb_to_recordset(coalesce(reports -> 'prompts', '[]')) x (key_id uuid, prompt_hash text,
                                                                        window_start timestamptz, calls integer)
      join public.api_keys k on k.id = x.key_id
     group by 1, 2, 3
    on conflict on constraint gateway_prompt_repeats_pkey do update set calls = p.calls + excluded.calls
    returning p.key_id, p.prompt_hash, p.window_start, p.calls
  )
  select coalesce(jsonb_agg(to_jsonb(a)), '[]') into prompts from added a;
  -- Written at most once a minute per key, so a busy key does not become one hot row.
  update public.api_keys a set last_used_at = now()
   where a.id in (select u::uuid from jsonb_array_elements_text(coalesce(reports -> 'used', '[]')) u)
     and (a.last_used_at is null or a.last_used_at < now() - interval '1 minute');
  return jsonb_build_object('windows', windows, 'prompts', prompts);
end
$$;
comment on function private.gateway_sync_counters(jsonb) is
  'Add a gateway process''s counted requests, tokens and prompt repeats; answer the totals of those windows.';

-- The kill-switch tripped in a process: the key is stopped everywhere (and listed) until admins lift it.
create function private.gateway_block_key(key uuid, prompt_hash text, block_for interval) returns void
language sql volatile set search_path = '' as $$
  insert into private.gateway_key_blocks as b (key_id, org_id, reason, prompt_hash, blocked_until)
  select k.id, k.org_id, 'runaway_loop', prompt_hash, now() + block_for from public.api_keys k where k.id = key
  on conflict on constraint gateway_key_blocks_pkey do update
    set reason = excluded.reason, prompt_hash = excluded.prompt_hash, blocked_at = now(),
        blocked_until = excluded.blocked_until;
$$;
comment on function private.gateway_block_key(uuid, text, interval) is 'Stop a virtual key (runaway loop) for block_for.';

-- A virtual key's admission data, for the gateway's in-memory cache (no counting here).
create function private.gateway_key(presented_hash bytea)
returns table (key_id uuid, org_id uuid, project_id uuid, key_hash bytea, key_name text, team text,
               project text, end_user_id text, allowed_models text[], allowed_providers text[],
               store_prompts boolean, rpm integer, tpm integer, expires_at timestamptz, blocked_until timestamptz)
language sql stable set search_path = '' set jit = off as $$
  select a.id, a.org_id, a.project_id, a.key_hash, a.name, v.team, v.project, v.end_user_id, v.allowed_models,
         v.allowed_providers, o.store_prompts, v.rpm, v.tpm, a.expires_at,
         (select b.blocked_until from private.gateway_key_blocks b where b.key_id = a.id and b.blocked_until > now())
    from public.api_keys a
    join private.virtual_keys v on v.key_id = a.id
    join public.organizations o on o.id = a.org_id
   where a.key_hash = presented_hash and a.revoked_at is null and 'gateway' = any (a.scopes)
     and (a.expires_at is null or a.expires_at > now())
$$;
comment on function private.gateway_key(bytea) is
  'A valid virtual key''s policy (no row when unknown, revoked, expired or not a virtual key), with any active block.';

-- ---------------------------------------------------------------- invalidation
-- Gateway processes cache keys' admission data; a change to a key, its policy, its block or its
-- organization's prompt setting is announced on this channel (payload: key id, or org:<id>) when it
-- commits, so every process drops it at once.
create function private.gateway_key_changed() returns trigger
language plpgsql set search_path = '' as $$
declare
  r record := case when tg_op = 'DELETE' then old else new end;
begin
  if tg_table_name = 'organizations' then
    perform pg_notify('tokentra_gateway_keys', 'org:' || r.id::text);
  elsif tg_table_name = 'api_keys' then
    perform pg_notify('tokentra_gateway_keys', r.id::text);
  else
    perform pg_notify('tokentra_gateway_keys', r.key_id::text);
  end if;
  return null;
end
$$;
comment on function private.gateway_key_changed() is 'Announce a change to a virtual key''s admission data to gateways.';

create trigger gateway_key_changed after update of key_hash, revoked_at, expires_at, scopes or delete
  on public.api_keys for each row execute function private.gateway_key_changed();
create trigger gateway_key_changed after update or delete on private.virtual_keys
  for each row execute function private.gateway_key_changed();
create trigger gateway_key_changed after insert or update or delete on private.gateway_key_blocks
  for each row execute function private.gateway_key_changed();
create trigger gateway_key_changed after update of store_prompts on public.organizations
  for each row execute function private.gateway_key_changed();

revoke all on function private.gateway_price_card(text, text),
  private.gateway_return_lease(uuid, uuid, numeric, boolean), private.gateway_settle_lease(uuid, numeric),
  private.gateway_lease(uuid, uuid, text, text, jsonb, numeric, numeric, numeric, interval, uuid, numeric),
  private.gateway_carve_calls(uuid, jsonb), private.gateway_sync_counters(jsonb),
  private.gateway_block_key(uuid, text, interval), private.gateway_key(bytea), private.gateway_key_changed()
  from public;
grant execute on function private.gateway_price_card(text, text),
  private.gateway_return_lease(uuid, uuid, numeric, boolean),
  private.gateway_lease(uuid, uuid, text, text, jsonb, numeric, numeric, numeric, interval, uuid, numeric),
  private.gateway_carve_calls(uuid, jsonb), private.gateway_sync_counters(jsonb),
  private.gateway_block_key(uuid, text, interval), private.gateway_key(bytea) to service_role;
