-- Cost lines billed in another currency than USD are stored (with their currency) but the daily cost view,
-- and so the reconciliation, sums USD only: such a line would otherwise vanish from the comparison without a
-- trace. The sync status counts them per connection and endpoint, with their currencies, so a reader sees
-- that part of the bill is not in the reconciliation (converting would need a rate the bill does not carry).
drop function private.provider_sync_status(uuid);
create function private.provider_sync_status(org uuid)
returns table (connection_id uuid, provider text, connection_name text, endpoint text, synced_through timestamptz,
               last_success_at timestamptz, in_progress boolean, pages_in_window integer, last_error text,
               last_error_at timestamptz, consecutive_failures integer, non_usd_cost_lines integer,
               non_usd_currencies text[])
language sql stable set search_path = '' as $$
  select c.id, c.provider, c.name, e.endpoint, s.synced_through, s.last_success_at, coalesce(s.sync_id is not null, false),
         coalesce(s.pages_in_window, 0), s.last_error, s.last_error_at, coalesce(s.consecutive_failures, 0),
         coalesce(x.lines, 0), coalesce(x.currencies, '{}')
    from public.provider_connections c
    join private.provider_admin_keys a on a.connection_id = c.id
    cross join lateral (values ('openai', 'organization/usage/completions'), ('openai', 'organization/usage/embeddings'),
                               ('openai', 'organization/costs'), ('anthropic', 'organizations/usage_report/messages'),
                               ('anthropic', 'organizations/cost_report')) as e (provider, endpoint)
    left join private.provider_sync_state s on s.connection_id = c.id and s.endpoint = e.endpoint
    left join lateral (
      select count(*)::integer as lines, array_agg(distinct k.currency order by k.currency) as currencies
        from private.provider_billed_cost k
       where k.connection_id = c.id and k.endpoint = e.endpoint and k.currency <> 'usd'
    ) x on true
   where c.org_id = provider_sync_status.org and c.enabled and e.provider = c.provider
   order by c.provider, c.name, e.endpoint
$$;
comment on function private.provider_sync_status(uuid) is
  'Per enabled connection with an admin key and report endpoint of org: synced through when, a window in progress, '
  'the last failure (never synced: nulls), and the cost lines in another currency than USD, which the '
  'reconciliation leaves out.';
revoke all on function private.provider_sync_status(uuid) from public;
grant execute on function private.provider_sync_status(uuid) to service_role;

comment on view private.provider_billed_cost_daily is
  'Billed cost per UTC day and line, USD lines only (private.provider_sync_status counts the others).';
