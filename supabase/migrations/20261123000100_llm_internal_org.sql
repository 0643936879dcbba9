-- The internal organization: every LLM call TokenTRA itself makes is recorded as its usage, through the
-- same ingest function customers use, with the customer organization it was made for as end_user_id.

-- Found by its fixed slug; created once, whatever the number of runs.
insert into public.organizations (name, slug, plan)
values ('TokenTRA (internal)', 'tokentra-internal', 'enterprise')
on conflict (slug) do nothing;

insert into public.billing_profiles (org_id)
select o.id from public.organizations o where o.slug = 'tokentra-internal'
on conflict (org_id) do nothing;

-- The internal organization's id.
create function private.internal_org_id() returns uuid
language sql stable set search_path = '' as $$
  select o.id from public.organizations o where o.slug = 'tokentra-internal'
$$;
comment on function private.internal_org_id() is
  'The organization TokenTRA''s own LLM usage is recorded under (slug tokentra-internal).';
revoke all on function private.internal_org_id() from public;
grant execute on function private.internal_org_id() to service_role;

-- A short-lived ingest key for the LLM layer, minted when a worker starts: only its hash is stored, the
-- plaintext lives in that worker's memory until the key expires.
create function private.mint_internal_ingest_key(ttl interval default interval '1 day')
returns table (id uuid, key text, expires_at timestamptz)
language plpgsql volatile security definer set search_path = '' as $$
declare
  until timestamptz := now() + ttl;
begin
  if ttl <= interval '0' or ttl > interval '7 days' then
    raise exception 'ttl must be between 0 and 7 days, not %', ttl using errcode = '22023';
  end if;
  return query
    select k.id, k.key, until
      from private.new_api_key(private.internal_org_id(), null, 'tokentra-llm', false,
                               array['ingest'], until) k;
end
$$;
comment on function private.mint_internal_ingest_key(interval) is
  'Create an expiring ingest key of the internal organization and return its plaintext once.';
revoke all on function private.mint_internal_ingest_key(interval) from public;
grant execute on function private.mint_internal_ingest_key(interval) to service_role;
