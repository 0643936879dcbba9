-- Provider connections: an organization's own provider credentials (for usage import and routing).
-- The secret is never stored in plaintext: on Supabase it lives in Vault (vault_secret_id); elsewhere
-- it is envelope-encrypted by the service (a per-secret data key wrapped by TOKENTRA_SECRET_KEY).

create table public.provider_connections (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  provider text not null,
  name text not null default 'default',
  key_hint text,
  vault_secret_id uuid,
  ciphertext bytea,
  wrapped_key bytea,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint secret_is_in_vault_or_encrypted
    check ((vault_secret_id is not null) <> (ciphertext is not null and wrapped_key is not null)),
  constraint connection_name_is_unique unique (org_id, provider, name)
);
comment on column public.provider_connections.key_hint is 'Last four characters of the key, for display.';
create trigger touch_updated_at before update on public.provider_connections
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.provider_connections', 'providers');
-- Users see that a connection exists and its hint; the encrypted material is the service's alone.
grant select (id, org_id, provider, name, key_hint, enabled, created_at, updated_at)
  on public.provider_connections to authenticated;
grant update (name, enabled) on public.provider_connections to authenticated;
grant delete on public.provider_connections to authenticated;
