-- Provider connections gain where to reach the provider (Azure OpenAI, OpenRouter, a corporate proxy, a
-- local test server) and an optional admin key beside the API key (the providers' usage and cost reports
-- need one; an inference key cannot read them). The admin key is sealed like the API key: in Vault where
-- present, else envelope-encrypted by the service. It lives in its own private table so that no user role
-- can reach it and the audit trigger of provider_connections never sees it.

-- ---------------------------------------------------------------- base URL
-- No credentials in the URL (user:password@host would be a secret in a readable, audited column).
alter table public.provider_connections
  add column base_url text
    constraint base_url_is_http_without_credentials
      check (base_url ~ '^https?://[^/@[:space:]]+(/[^[:space:]]*)?$' and length(base_url) <= 2048);
comment on column public.provider_connections.base_url is
  'Where the provider''s API is reached (e.g. https://api.openai.com/v1); null means the provider''s public endpoint.';
-- Members who read connections see where they point; only the service changes it (it decides where the
-- organization's credentials are sent).
grant select (base_url) on public.provider_connections to authenticated;

-- ---------------------------------------------------------------- admin key
create table private.provider_admin_keys (
  connection_id uuid primary key references public.provider_connections (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  key_hint text not null,
  vault_secret_id uuid,
  ciphertext bytea,
  wrapped_key bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint admin_secret_is_in_vault_or_encrypted
    check ((vault_secret_id is not null) <> (ciphertext is not null and wrapped_key is not null))
);
comment on table private.provider_admin_keys is
  'The admin key of a provider connection (usage and cost reports), sealed; readable by the service only.';
comment on column private.provider_admin_keys.key_hint is 'Last four characters of the admin key, for display.';
create trigger touch_updated_at before update on private.provider_admin_keys
  for each row execute function private.touch_updated_at();
-- RLS with no policy: no user role reads or writes it; the service bypasses RLS.
alter table private.provider_admin_keys enable row level security;

-- The admin key's organization is its connection's, always.
create function private.admin_key_matches_connection() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  if not exists (select 1 from public.provider_connections c
                  where c.id = new.connection_id and c.org_id = new.org_id) then
    raise exception 'org_id: the admin key must belong to its connection''s organization'
      using errcode = '23514';
  end if;
  return new;
end
$$;
comment on function private.admin_key_matches_connection() is
  'Trigger: refuse an admin key whose org_id differs from its provider connection''s.';
create trigger admin_key_matches_connection before insert or update on private.provider_admin_keys
  for each row execute function private.admin_key_matches_connection();

-- ---------------------------------------------------------------- Vault cleanup
-- A removed connection or admin key takes its Vault secret with it (dynamic SQL: Vault may be absent,
-- and then no row holds a vault_secret_id).
create function private.drop_vault_secret() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  if old.vault_secret_id is not null and to_regclass('vault.secrets') is not null then
    execute 'delete from vault.secrets where id = $1' using old.vault_secret_id;
  end if;
  return old;
end
$$;
comment on function private.drop_vault_secret() is
  'Trigger: delete the Vault secret a removed provider connection or admin key pointed to.';
revoke all on function private.drop_vault_secret() from public;
create trigger drop_vault_secret after delete on public.provider_connections
  for each row execute function private.drop_vault_secret();
create trigger drop_vault_secret after delete on private.provider_admin_keys
  for each row execute function private.drop_vault_secret();

-- ---------------------------------------------------------------- reads for the service
-- The enabled connection an organization's calls to a provider go through ('default' first, then the
-- oldest), with the sealed API key. Service only: the gateway decrypts it, never a user.
create function private.provider_connection_for(org uuid, provider_name text)
returns table (connection_id uuid, base_url text, vault_secret_id uuid, ciphertext bytea, wrapped_key bytea,
               updated_at timestamptz)
language sql stable rows 1 set search_path = '' as $$
  select c.id, c.base_url, c.vault_secret_id, c.ciphertext, c.wrapped_key, c.updated_at
    from public.provider_connections c
   where c.org_id = org and c.provider = lower(provider_name) and c.enabled
   order by c.name = 'default' desc, c.created_at
   limit 1
$$;
comment on function private.provider_connection_for(uuid, text) is
  'The enabled connection (default first, then oldest) of org for a provider, with its sealed API key.';

-- Connections with an admin key, for the jobs that read the providers' usage and cost reports.
create function private.provider_admin_connections()
returns table (connection_id uuid, org_id uuid, provider text, name text, base_url text, key_hint text,
               vault_secret_id uuid, ciphertext bytea, wrapped_key bytea)
language sql stable set search_path = '' as $$
  select c.id, c.org_id, c.provider, c.name, c.base_url, a.key_hint, a.vault_secret_id, a.ciphertext, a.wrapped_key
    from public.provider_connections c
    join private.provider_admin_keys a on a.connection_id = c.id
   where c.enabled
   order by c.org_id, c.provider, c.name
$$;
comment on function private.provider_admin_connections() is
  'Every enabled provider connection that has an admin key, with the sealed admin key.';

revoke all on function private.provider_connection_for(uuid, text), private.provider_admin_connections() from public;
grant execute on function private.provider_connection_for(uuid, text), private.provider_admin_connections()
  to service_role;
