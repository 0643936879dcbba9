-- Virtual keys: the key an application holds instead of a provider's, for the gateway. A virtual key is
-- an API key (hash and display prefix only, expiry, revocation, its id on every usage row it makes) with
-- the scope 'gateway' and a policy beside it: the attribution its calls carry (team, project, end user),
-- rate limits, the models and providers it may call, and optionally a budget of its own, which is an
-- ordinary budget scoped to the key, so spend, reservations, alerts and forecasts treat it like any other.

-- ---------------------------------------------------------------- policy
create table private.virtual_keys (
  key_id uuid primary key references public.api_keys (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  team text constraint team_is_short check (length(team) between 1 and 200),
  project text constraint project_is_short check (length(project) between 1 and 200),
  end_user_id text constraint end_user_is_short check (length(end_user_id) between 1 and 200),
  budget_id uuid references public.budgets (id) on delete set null,
  rpm integer constraint rpm_is_positive check (rpm > 0),
  tpm integer constraint tpm_is_positive check (tpm > 0),
  allowed_models text[] constraint allowed_models_are_named
    check (cardinality(allowed_models) between 1 and 200 and array_position(allowed_models, null) is null),
  allowed_providers text[] constraint allowed_providers_are_known
    check (allowed_providers <@ array['openai', 'anthropic'] and cardinality(allowed_providers) >= 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.virtual_keys is
  'Gateway policy of a virtual key (an api_keys row with scope gateway): attribution, limits, allowed models.';
comment on column private.virtual_keys.allowed_models is 'Models the key may call; null allows every model.';
comment on column private.virtual_keys.allowed_providers is 'Providers the key may call; null allows both.';
comment on column private.virtual_keys.budget_id is 'The key''s own budget (scope api_key = this key), if any.';
create index virtual_keys_org_idx on private.virtual_keys (org_id);
create trigger touch_updated_at before update on private.virtual_keys
  for each row execute function private.touch_updated_at();
alter table private.virtual_keys enable row level security;
create policy "members with api_keys.read read their organizations' virtual keys" on private.virtual_keys
  for select to authenticated using (org_id = any ((select private.org_ids_with('api_keys.read'))::uuid[]));
grant select on private.virtual_keys to authenticated;

-- ---------------------------------------------------------------- gateway counters
-- Requests and tokens per key per minute (tokens are added when a call's usage is recorded).
create table private.gateway_rate_windows (
  key_id uuid not null references public.api_keys (id) on delete cascade,
  window_start timestamptz not null,
  requests integer not null default 0,
  tokens bigint not null default 0,
  primary key (key_id, window_start)
);
comment on table private.gateway_rate_windows is 'Per-minute request and token counts of virtual keys.';
alter table private.gateway_rate_windows enable row level security;

-- How often a key sent the same prompt in the current loop window: an agent making progress changes its
-- messages (a tool result, an answer appended), one stuck in a loop sends the same ones again.
create table private.gateway_prompt_repeats (
  key_id uuid not null references public.api_keys (id) on delete cascade,
  prompt_hash text not null,
  window_start timestamptz not null,
  calls integer not null default 0,
  primary key (key_id, prompt_hash, window_start)
);
comment on table private.gateway_prompt_repeats is 'Calls per (virtual key, prompt hash, loop window), for the runaway guard.';
alter table private.gateway_prompt_repeats enable row level security;

-- A key stopped by a block rule, until a time (the kill-switch). Admins lift it by deleting the row
-- (tokentra virtual-keys unblock).
create table private.gateway_key_blocks (
  key_id uuid primary key references public.api_keys (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  reason text not null,
  prompt_hash text,
  blocked_at timestamptz not null default now(),
  blocked_until timestamptz not null
);
comment on table private.gateway_key_blocks is 'Virtual keys stopped by a block rule (runaway loop) until blocked_until.';
alter table private.gateway_key_blocks enable row level security;
create policy "members with api_keys.read read their organizations' key blocks" on private.gateway_key_blocks
  for select to authenticated using (org_id = any ((select private.org_ids_with('api_keys.read'))::uuid[]));
grant select on private.gateway_key_blocks to authenticated;

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-gateway-window-cleanup', '*/10 * * * *',
   'delete from private.gateway_rate_windows where window_start < now() - interval ''10 minutes''; '
   'delete from private.gateway_prompt_repeats where window_start < now() - interval ''1 day''; '
   'delete from private.gateway_key_blocks where blocked_until < now() - interval ''1 day''',
   'Drop the gateway''s past rate windows, prompt repeat counts and expired blocks.');
select private.schedule_periodic_jobs();

-- ---------------------------------------------------------------- create, rotate
-- 32 random bytes, base64url without padding, behind a prefix that says what the key is for.
create function private.virtual_key_secret() returns text
language sql volatile set search_path = '' as $$
  select 'tt_vk_' || translate(rtrim(encode(extensions.gen_random_bytes(32), 'base64'), '='), '+/', '-_')
$$;
comment on function private.virtual_key_secret() is 'A fresh virtual key: tt_vk_ and 256 random bits, base64url.';

-- Make a virtual key and, when budget_amount is given, its budget; returns the plaintext key once.
create function private.new_virtual_key(
  org uuid, key_name text default 'gateway', team text default null, project text default null,
  end_user_id text default null, budget_amount numeric default null, budget_period text default 'monthly',
  hard_limit boolean default true, rpm integer default null, tpm integer default null,
  models text[] default null, providers text[] default null, expires timestamptz default null,
  creator uuid default null
) returns table (id uuid, key text, prefix text, budget_id uuid)
language plpgsql volatile security definer set search_path = '' as $$
declare
  full_key text := private.virtual_key_secret();
  new_id uuid;
  new_budget uuid;
begin
  if expires is not null and expires <= now() then
    raise exception 'expires: must be in the future' using errcode = '22023';
  end if;
  if budget_amount is not null and budget_amount <= 0 then
    raise exception 'budget: must be a positive amount of USD' using errcode = '22023';
  end if;
  if budget_period is null or budget_period not in ('daily', 'weekly', 'monthly') then
    raise exception 'period: must be daily, weekly or monthly' using errcode = '22023';
  end if;
  if providers is not null and not providers <@ array['openai', 'anthropic'] then
    raise exception 'providers: each must be openai or anthropic' using errcode = '22023';
  end if;
  insert into public.api_keys (org_id, name, prefix, key_hash, mode, scopes, rate_limit_per_minute, expires_at,
                               created_by)
  values (org, key_name, left(full_key, 12), extensions.digest(full_key, 'sha256'), 'live', array['gateway'],
          coalesce(rpm, 6000), expires, creator)
  returning api_keys.id into new_id;
  if budget_amount is not null then
    insert into public.budgets (org_id, name, amount, period, scope_type, scope_id, hard_limit)
    values (org, 'virtual key ' || key_name, round(budget_amount, 2), budget_period, 'api_key', new_id::text,
            coalesce(hard_limit, true))
    returning budgets.id into new_budget;
  end if;
  insert into private.virtual_keys (key_id, org_id, team, project, end_user_id, budget_id, rpm, tpm,
                                    allowed_models, allowed_providers)
  values (new_id, org, nullif(btrim(team), ''), nullif(btrim(project), ''), nullif(btrim(end_user_id), ''),
          new_budget, rpm, tpm, models, providers);
  return query select new_id, full_key, left(full_key, 12), new_budget;
end
$$;
comment on function private.new_virtual_key(uuid, text, text, text, text, numeric, text, boolean, integer, integer,
                                            text[], text[], timestamptz, uuid) is
  'Create a virtual key (and its own budget when budget_amount is given); returns the plaintext once.';

-- A new secret for the same key: its id, policy, budget and history stay; the old secret stops working.
create function private.rotate_virtual_key(org uuid, vk uuid)
returns table (id uuid, key text, prefix text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  full_key text := private.virtual_key_secret();
begin
  update public.api_keys k set key_hash = extensions.digest(full_key, 'sha256'), prefix = left(full_key, 12)
   where k.id = vk and k.org_id = org and k.scopes = array['gateway'] and k.revoked_at is null;
  if not found then
    raise exception 'key: no active virtual key % in this organization', vk
      using errcode = 'P0002';
  end if;
  return query select vk, full_key, left(full_key, 12);
end
$$;
comment on function private.rotate_virtual_key(uuid, uuid) is
  'Replace an active virtual key''s secret (same id, policy and budget); returns the new plaintext once.';

-- ---------------------------------------------------------------- the API's versions (user JWT)
create function public.create_virtual_key(
  org uuid, key_name text default 'gateway', team text default null, project text default null,
  end_user_id text default null, budget_amount numeric default null, budget_period text default 'monthly',
  hard_limit boolean default true, rpm integer default null, tpm integer default null,
  models text[] default null, providers text[] default null, expires timestamptz default null
) returns table (id uuid, key text, prefix text, budget_id uuid)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not private.has_permission(org, 'api_keys.write')
     or (budget_amount is not null and not private.has_permission(org, 'budgets.write')) then
    raise exception 'not allowed to create virtual keys (or their budgets) in this organization'
      using errcode = '42501';
  end if;
  return query select * from private.new_virtual_key(org, key_name, team, project, end_user_id, budget_amount,
                                                     budget_period, hard_limit, rpm, tpm, models, providers,
                                                     expires, auth.uid());
end
$$;
comment on function public.create_virtual_key(uuid, text, text, text, text, numeric, text, boolean, integer, integer,
                                              text[], text[], timestamptz) is
  'Create a virtual key where the caller may write API keys (and budgets, for its own budget); returns it once.';

create function public.rotate_virtual_key(org uuid, vk uuid)
returns table (id uuid, key text, prefix text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not private.has_permission(org, 'api_keys.write') then
    raise exception 'not allowed to rotate virtual keys in this organization' using errcode = '42501';
  end if;
  return query select * from private.rotate_virtual_key(org, vk);
end
$$;
comment on function public.rotate_virtual_key(uuid, uuid) is
  'Rotate a virtual key where the caller may write API keys; returns the new secret once.';

-- Revoking is an update members with api_keys.write may already make (revoked_at); this names it and
-- says whether there was an active key to revoke. Invoker: RLS on api_keys decides.
create function public.revoke_virtual_key(org uuid, vk uuid) returns boolean
language sql volatile set search_path = '' as $$
  with revoked as (
    update public.api_keys k set revoked_at = now()
     where k.id = vk and k.org_id = org and k.scopes = array['gateway'] and k.revoked_at is null
    returning 1
  )
  select exists (select 1 from revoked)
$$;
comment on function public.revoke_virtual_key(uuid, uuid) is
  'Revoke an active virtual key (under the caller''s RLS); true when one was revoked.';

-- Virtual keys of an organization with their policy, budget and block, as the caller may read them.
create function public.list_virtual_keys(org uuid)
returns table (id uuid, name text, prefix text, team text, project text, end_user_id text, budget_id uuid,
               budget_amount numeric, budget_period text, hard_limit boolean, rpm integer, tpm integer,
               allowed_models text[], allowed_providers text[], expires_at timestamptz, revoked_at timestamptz,
               last_used_at timestamptz, created_at timestamptz, blocked_until timestamptz, block_reason text)
language sql stable set search_path = '' as $$
  select k.id, k.name, k.prefix, v.team, v.project, v.end_user_id, v.budget_id, b.amount, b.period, b.hard_limit,
         v.rpm, v.tpm, v.allowed_models, v.allowed_providers, k.expires_at, k.revoked_at, k.last_used_at,
         k.created_at, x.blocked_until, x.reason
    from public.api_keys k
    join private.virtual_keys v on v.key_id = k.id
    left join public.budgets b on b.id = v.budget_id
    left join private.gateway_key_blocks x on x.key_id = k.id and x.blocked_until > now()
   where k.org_id = org
   order by k.created_at, k.id
$$;
comment on function public.list_virtual_keys(uuid) is
  'An organization''s virtual keys with policy, budget and any active block (under the caller''s RLS).';

-- ---------------------------------------------------------------- admission (the gateway's hot path)
-- One round trip per call: the key (valid, unrevoked, unexpired, scope gateway), its policy, then the
-- block rules and rate limits, counted only for a key that passed the checks before them. verdict: ok,
-- blocked (kill-switch), loop (this call tripped it), rpm or tpm; retry_after in seconds. No row for a
-- key that is unknown, revoked, expired or not a virtual key, so callers cannot tell those apart.
create function private.gateway_admit(presented_hash bytea, prompt_hash text, loop_limit integer,
                                      loop_window interval, block_for interval)
returns table (key_id uuid, org_id uuid, project_id uuid, key_hash bytea, key_name text, team text,
               project text, end_user_id text, allowed_models text[], allowed_providers text[],
               store_prompts boolean, verdict text, retry_after integer)
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  k record;
  win timestamptz := date_trunc('minute', now());
  counted record;
  blocked timestamptz;
  repeats integer;
  loop_win timestamptz;
begin
  select a.id, a.org_id, a.project_id, a.key_hash, a.name, a.last_used_at, v.team, v.project, v.end_user_id,
         v.allowed_models, v.allowed_providers, v.rpm, v.tpm, o.store_prompts
    into k
    from public.api_keys a
    join private.virtual_keys v on v.key_id = a.id
    join public.organizations o on o.id = a.org_id
   where a.key_hash = presented_hash and a.revoked_at is null and 'gateway' = any (a.scopes)
     and (a.expires_at is null or a.expires_at > now());
  if not found then
    return;
  end if;
  -- Written at most once a minute per key, so a busy key does not become one hot row.
  if k.last_used_at is null or k.last_used_at < now() - interval '1 minute' then
    update public.api_keys a set last_used_at = now() where a.id = k.id;
  end if;
  verdict := 'ok';
  retry_after := 0;
  select b.blocked_until into blocked from private.gateway_key_blocks b
   where b.key_id = k.id and b.blocked_until > now();
  if found then
    verdict := 'blocked';
    retry_after := ceil(extract(epoch from blocked - now()))::integer;
  elsif prompt_hash is not null and loop_limit > 0 then
    loop_win := pg_catalog.date_bin(loop_window, now(), timestamptz '2000-01-01');
    insert into private.gateway_prompt_repeats as r (key_id, prompt_hash, window_start, calls)
    values (k.id, prompt_hash, loop_win, 1)
    on conflict on constraint gateway_prompt_repeats_pkey do update set calls = r.calls + 1
    returning r.calls into repeats;
    if repeats > loop_limit then
      insert into private.gateway_key_blocks as b (key_id, org_id, reason, prompt_hash, blocked_until)
      values (k.id, k.org_id, 'runaway_loop', prompt_hash, now() + block_for)
      on conflict on constraint gateway_key_blocks_pkey do update
        set reason = excluded.reason, prompt_hash = excluded.prompt_hash, blocked_at = now(),
            blocked_until = excluded.blocked_until;
      verdict := 'loop';
      retry_after := ceil(extract(epoch from block_for))::integer;
    end if;
  end if;
  if verdict = 'ok' and (k.rpm is not null or k.tpm is not null) then
    insert into private.gateway_rate_windows as w (key_id, window_start, requests)
    values (k.id, win, 1)
    on conflict on constraint gateway_rate_windows_pkey do update set requests = w.requests + 1
    returning w.requests, w.tokens into counted;
    if k.rpm is not null and counted.requests > k.rpm then
      verdict := 'rpm';
    elsif k.tpm is not null and counted.tokens >= k.tpm then
      verdict := 'tpm';
    end if;
    if verdict <> 'ok' then
      retry_after := greatest(1, ceil(extract(epoch from (win + interval '1 minute' - now())))::integer);
    end if;
  end if;
  return query select k.id, k.org_id, k.project_id, k.key_hash, k.name, k.team, k.project, k.end_user_id,
                      k.allowed_models, k.allowed_providers, k.store_prompts, verdict, retry_after;
end
$$;
comment on function private.gateway_admit(bytea, text, integer, interval, interval) is
  'Gateway admission in one call: a valid virtual key''s policy, then block rules (runaway loop: more than '
  'loop_limit calls of one prompt hash in loop_window blocks the key for block_for) and rpm/tpm limits.';

-- Tokens of recorded calls count against their keys' tokens-per-minute window ([{key_id, tokens}]).
create function private.gateway_count_tokens(reports jsonb) returns void
language sql volatile set search_path = '' as $$
  insert into private.gateway_rate_windows as w (key_id, window_start, tokens)
  select r.key_id, date_trunc('minute', now()), sum(r.tokens)
    from jsonb_to_recordset(reports) as r (key_id uuid, tokens bigint)
   where r.key_id is not null and r.tokens > 0
   group by r.key_id
  on conflict on constraint gateway_rate_windows_pkey do update set tokens = w.tokens + excluded.tokens
$$;
comment on function private.gateway_count_tokens(jsonb) is
  'Add recorded calls'' tokens to their virtual keys'' current tokens-per-minute windows.';

revoke all on function private.virtual_key_secret(),
  private.new_virtual_key(uuid, text, text, text, text, numeric, text, boolean, integer, integer, text[], text[],
                          timestamptz, uuid),
  private.rotate_virtual_key(uuid, uuid),
  public.create_virtual_key(uuid, text, text, text, text, numeric, text, boolean, integer, integer, text[], text[],
                            timestamptz),
  public.rotate_virtual_key(uuid, uuid), public.revoke_virtual_key(uuid, uuid), public.list_virtual_keys(uuid),
  private.gateway_admit(bytea, text, integer, interval, interval), private.gateway_count_tokens(jsonb)
  from public;
grant execute on function
  public.create_virtual_key(uuid, text, text, text, text, numeric, text, boolean, integer, integer, text[], text[],
                            timestamptz),
  public.rotate_virtual_key(uuid, uuid), public.revoke_virtual_key(uuid, uuid), public.list_virtual_keys(uuid)
  to authenticated, service_role;
grant execute on function
  private.new_virtual_key(uuid, text, text, text, text, numeric, text, boolean, integer, integer, text[], text[],
                          timestamptz, uuid),
  private.rotate_virtual_key(uuid, uuid),
  private.gateway_admit(bytea, text, integer, interval, interval), private.gateway_count_tokens(jsonb)
  to service_role;
