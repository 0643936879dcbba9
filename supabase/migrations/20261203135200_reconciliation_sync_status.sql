-- How far each provider report is synced, and why it is not, for the organizations whose usage the caller
-- reads: without it a day the sync has not reached (or a refused admin key) reads as untracked spend or a
-- missing bill. The status itself is service only (it is read across organizations); this hands a member
-- their own organizations' rows. Nothing secret is in it: recorded errors have key-shaped text removed.
create function public.reconciliation_sync_status(org uuid default null)
returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'org_id', o.id, 'connection_id', s.connection_id, 'provider', s.provider,
           'connection_name', s.connection_name, 'endpoint', s.endpoint, 'synced_through', s.synced_through,
           'last_success_at', s.last_success_at, 'in_progress', s.in_progress, 'last_error', s.last_error,
           'last_error_at', s.last_error_at, 'consecutive_failures', s.consecutive_failures,
           'non_usd_cost_lines', s.non_usd_cost_lines, 'non_usd_currencies', to_jsonb(s.non_usd_currencies))
           order by o.id, s.provider, s.connection_name, s.endpoint), '[]'::jsonb)
    from public.organizations o
   cross join lateral private.provider_sync_status(o.id) s
   where (reconciliation_sync_status.org is null or o.id = reconciliation_sync_status.org)
     and o.id = any ((select private.org_ids_with('usage.read'))::uuid[])
$$;
comment on function public.reconciliation_sync_status(uuid) is
  'private.provider_sync_status of the caller''s organizations with usage.read (or of org among them), as a JSON array.';
revoke all on function public.reconciliation_sync_status(uuid) from public;
grant execute on function public.reconciliation_sync_status(uuid) to authenticated;
