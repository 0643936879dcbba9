-- One organization's failure no longer rolls back everyone's reconciliation: each runs in its own
-- subtransaction, a failure is skipped with a warning and named in the result. (The worker commits each
-- organization on its own; this is for a call from SQL.)

-- The organizations the reconciliation covers: those with a provider admin key.
create function private.reconciliation_orgs() returns setof uuid
language sql stable set search_path = '' as $$
  select distinct c.org_id from public.provider_connections c
    join private.provider_admin_keys a on a.connection_id = c.id
   order by 1
$$;
comment on function private.reconciliation_orgs() is 'Organizations with a provider admin key, in id order.';

create or replace function private.reconcile_all(days integer default 31) returns jsonb
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  o uuid;
  n integer := 0;
  failed jsonb := '[]';
begin
  for o in select * from private.reconciliation_orgs() loop
    begin
      perform private.reconcile(o, (now() at time zone 'UTC')::date - reconcile_all.days, (now() at time zone 'UTC')::date);
      n := n + 1;
    exception when others then
      raise warning 'reconciliation failed for organization %: %: %', o, sqlstate, sqlerrm;
      failed := failed || jsonb_build_object('org_id', o, 'sqlstate', sqlstate, 'message', left(sqlerrm, 300));
    end;
  end loop;
  return jsonb_build_object('organizations', n, 'failed', failed);
end
$$;
comment on function private.reconcile_all(integer) is
  'Reconcile the last `days` UTC days of every organization that has a provider admin key, each on its own '
  '(a failing one is listed under failed).';

revoke all on function private.reconciliation_orgs() from public;
grant execute on function private.reconciliation_orgs() to service_role;
