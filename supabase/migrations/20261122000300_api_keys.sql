-- API keys: only a SHA-256 hash and a display prefix are stored; the key is shown once at creation.

create table public.api_keys (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  project_id uuid references public.projects (id) on delete cascade,
  name text not null default 'default',
  prefix text not null,
  key_hash bytea not null constraint key_hash_is_sha256 check (octet_length(key_hash) = 32),
  mode text not null constraint mode_is_live_or_test check (mode in ('live', 'test')),
  scopes text[] not null default array['ingest'],
  rate_limit_per_minute integer not null default 6000
    constraint rate_limit_is_positive check (rate_limit_per_minute > 0),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  created_by uuid references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  constraint key_hash_is_unique unique (key_hash)
);
comment on table public.api_keys is 'Keys the SDK and functions authenticate with. The key itself is never stored.';
create index api_keys_org_id_idx on public.api_keys (org_id);
select private.create_tenant_policies('public.api_keys', 'api_keys');
-- key_hash stays unreadable to users: knowing it would not give the key, but it has no use to them.
grant select (id, org_id, project_id, name, prefix, mode, scopes, rate_limit_per_minute, expires_at,
              revoked_at, last_used_at, created_by, created_at) on public.api_keys to authenticated;
grant update (name, scopes, rate_limit_per_minute, expires_at, revoked_at) on public.api_keys to authenticated;
grant delete on public.api_keys to authenticated;

-- Make a key: returns the plaintext once. Callers are the service (CLI) or create_api_key below.
create function private.new_api_key(
  org uuid, project uuid default null, key_name text default 'default', test boolean default false,
  key_scopes text[] default array['ingest'], expires timestamptz default null, creator uuid default null
) returns table (id uuid, key text, prefix text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  -- 32 random bytes, base64url without padding: 256 bits, nothing to guess.
  secret text := translate(rtrim(encode(extensions.gen_random_bytes(32), 'base64'), '='), '+/', '-_');
  full_key text := (case when test then 'tt_test_' else 'tt_live_' end) || secret;
  new_id uuid;
begin
  if project is not null and not exists (select 1 from public.projects p where p.id = project and p.org_id = org) then
    raise exception 'project % is not in organization %', project, org using errcode = '23503';
  end if;
  insert into public.api_keys (org_id, project_id, name, prefix, key_hash, mode, scopes, expires_at, created_by)
  values (org, project, key_name, left(full_key, 12), extensions.digest(full_key, 'sha256'),
          case when test then 'test' else 'live' end, key_scopes, expires, creator)
  returning api_keys.id into new_id;
  return query select new_id, full_key, left(full_key, 12);
end
$$;
comment on function private.new_api_key(uuid, uuid, text, boolean, text[], timestamptz, uuid) is
  'Create an API key and return its plaintext once; only its hash is kept.';
revoke all on function private.new_api_key(uuid, uuid, text, boolean, text[], timestamptz, uuid) from public;

-- The API's way to make a key: checks the caller's api_keys.write before delegating.
create function public.create_api_key(
  org uuid, project uuid default null, key_name text default 'default', test boolean default false,
  key_scopes text[] default array['ingest'], expires timestamptz default null
) returns table (id uuid, key text, prefix text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not private.has_permission(org, 'api_keys.write') then
    raise exception 'not allowed to create API keys in this organization' using errcode = '42501';
  end if;
  return query select * from private.new_api_key(org, project, key_name, test, key_scopes, expires, auth.uid());
end
$$;
comment on function public.create_api_key(uuid, uuid, text, boolean, text[], timestamptz) is
  'Create an API key in an organization where the caller may write keys; returns the key once.';
revoke all on function public.create_api_key(uuid, uuid, text, boolean, text[], timestamptz) from public;
grant execute on function public.create_api_key(uuid, uuid, text, boolean, text[], timestamptz) to authenticated;

-- Resolve a presented key's hash to its organization. Unknown, revoked and expired keys all give no
-- row, so callers cannot tell them apart. last_used_at is written at most once a minute per key so a
-- busy key does not turn into one hot row.
create function private.authenticate_api_key(presented_hash bytea)
returns table (key_id uuid, org_id uuid, project_id uuid, scopes text[], mode text, rate_limit_per_minute integer,
               key_hash bytea)
language plpgsql volatile security definer set search_path = '' as $$
begin
  return query
  update public.api_keys k
     set last_used_at = now()
   where k.key_hash = presented_hash and k.revoked_at is null
     and (k.expires_at is null or k.expires_at > now())
     and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute')
  returning k.id, k.org_id, k.project_id, k.scopes, k.mode, k.rate_limit_per_minute, k.key_hash;
  if not found then
    return query
    select k.id, k.org_id, k.project_id, k.scopes, k.mode, k.rate_limit_per_minute, k.key_hash
      from public.api_keys k
     where k.key_hash = presented_hash and k.revoked_at is null
       and (k.expires_at is null or k.expires_at > now());
  end if;
end
$$;
comment on function private.authenticate_api_key(bytea) is
  'The organization, project and scopes of a valid (unrevoked, unexpired) key, by its SHA-256 hash.';
revoke all on function private.authenticate_api_key(bytea) from public;
grant execute on function private.authenticate_api_key(bytea) to service_role;
