-- How fresh an organization's provider-side figures are: per connection with an admin key and report
-- endpoint, how far it is synced, whether a window is being read, and the last failure. A reconciliation
-- of a day the sync has not reached yet would show the whole tracked spend as a gap; readers check here
-- first. Service only, like the figures themselves.
create function private.provider_sync_status(org uuid)
returns table (connection_id uuid, provider text, connection_name text, endpoint text, synced_through timestamptz,
               last_success_at timestamptz, in_progress boolean, pages_in_window integer, last_error text,
               last_error_at timestamptz, consecutive_failures integer)
language sql stable set search_path = '' as $$
  select c.id, c.provider, c.name, e.endpoint, s.synced_through, s.last_success_at, coalesce(s.sync_id is not null, false),
         coalesce(s.pages_in_window, 0), s.last_error, s.last_error_at, coalesce(s.consecutive_failures, 0)
    from public.provider_connections c
    join private.provider_admin_keys a on a.connection_id = c.id
    cross join lateral (values ('openai', 'organization/usage/completions'), ('openai', 'organization/usage/embeddings'),
                               ('openai', 'organization/costs'), ('anthropic', 'organizations/usage_report/messages'),
                               ('anthropic', 'organizations/cost_report')) as e (provider, endpoint)
    left join private.provider_sync_state s on s.connection_id = c.id and s.endpoint = e.endpoint
   where c.org_id = provider_sync_status.org and c.enabled and e.provider = c.provider
   order by c.provider, c.name, e.endpoint
$$;
comment on function private.provider_sync_status(uuid) is
  'Per enabled connection with an admin key and report endpoint of org: synced through when, a window in progress, the last failure (never synced: nulls).';
revoke all on function private.provider_sync_status(uuid) from public;
grant execute on function private.provider_sync_status(uuid) to service_role;
