-- Audit log: every change to a configuration table, written by triggers so no path can skip it.

create table public.audit_logs (
  id bigint generated always as identity primary key,
  org_id uuid not null references public.organizations (id) on delete cascade,
  table_name text not null,
  row_id text,
  action text not null constraint action_is_known check (action in ('INSERT', 'UPDATE', 'DELETE')),
  actor uuid,
  actor_role text,
  old_row jsonb,
  new_row jsonb,
  created_at timestamptz not null default now()
);
create index audit_logs_org_created_idx on public.audit_logs (org_id, created_at desc);
select private.create_tenant_policies('public.audit_logs', 'audit', false);
grant select on public.audit_logs to authenticated;

-- Columns that hold secrets or their hashes never reach the audit log.
create function private.audit_change() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
declare
  hidden text[] := array['key_hash', 'ciphertext', 'wrapped_key', 'vault_secret_id', 'prompt_text'];
  old_j jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) - hidden end;
  new_j jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) - hidden end;
  org uuid := coalesce(new_j, old_j) ->> 'org_id';
begin
  if tg_table_name = 'organizations' then
    org := coalesce(new_j, old_j) ->> 'id';
  end if;
  -- An organization being deleted takes its audit rows with it; nothing left to log against.
  if tg_op = 'DELETE' and not exists (select 1 from public.organizations o where o.id = org) then
    return old;
  end if;
  insert into public.audit_logs (org_id, table_name, row_id, action, actor, actor_role, old_row, new_row)
  values (org, tg_table_name, coalesce(new_j, old_j) ->> 'id', tg_op, auth.uid(),
          coalesce(auth.role(), current_user), old_j, new_j);
  return coalesce(new, old);
end
$$;
comment on function private.audit_change() is 'Trigger: record a configuration change in public.audit_logs.';

do $$
declare
  t text;
begin
  foreach t in array array['organizations', 'organization_members', 'teams', 'projects', 'billing_profiles',
                           'api_keys', 'provider_connections', 'budgets', 'alert_rules', 'routing_rules']
  loop
    execute format('create trigger audit_change after insert or update or delete on public.%I '
                   'for each row execute function private.audit_change()', t);
  end loop;
end
$$;
