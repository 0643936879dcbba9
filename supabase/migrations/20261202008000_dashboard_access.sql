-- What the dashboard asks about the signed-in user and, for owners and admins, about their
-- organization's people: memberships with the permissions each role holds, members with their email,
-- role changes that never leave an organization without an owner, and analyst logins. Every function
-- checks the caller's permission in the organization itself (the role matrix in private.role_permissions),
-- so the HTTP layer only passes the user's JWT through.

-- ---------------------------------------------------------------- the caller's organizations
create function public.my_organizations()
returns table (id uuid, name text, slug text, plan text, role text, permissions text[])
language sql stable security definer set search_path = '' as $$
  select o.id, o.name, o.slug, o.plan, m.role,
         coalesce((select array_agg(p.permission order by p.permission)
                     from private.role_permissions p where p.role = m.role), '{}')
  from public.organization_members m
  join public.organizations o on o.id = m.org_id
  where m.user_id = (select auth.uid())
  order by o.name, o.id
$$;
comment on function public.my_organizations() is
  'The organizations the calling user belongs to, with their role and the permissions it holds there.';
revoke all on function public.my_organizations() from public;
grant execute on function public.my_organizations() to authenticated;

-- ---------------------------------------------------------------- members
create function public.org_members(org uuid)
returns table (user_id uuid, email text, role text, created_at timestamptz)
language plpgsql stable security definer set search_path = '' as $$
begin
  if not private.has_permission(org, 'members.read') then
    raise exception 'org_id: your role may not read this organization''s members' using errcode = '42501';
  end if;
  -- Definer: auth.users is not readable by users; only the email of the organization's members is shown.
  return query
    select m.user_id, u.email::text, m.role, m.created_at
    from public.organization_members m
    left join auth.users u on u.id = m.user_id
    where m.org_id = org
    order by m.created_at, m.user_id;
end
$$;
comment on function public.org_members(uuid) is
  'Members of an organization with email and role, for callers holding members.read there.';
revoke all on function public.org_members(uuid) from public;
grant execute on function public.org_members(uuid) to authenticated;

-- Invoker: RLS on organization_members decides who may change or remove a member (owners); the
-- function adds the rule RLS cannot express, that an organization keeps at least one owner.
create function public.set_member_role(org uuid, member uuid, new_role text) returns boolean
language plpgsql volatile security invoker set search_path = '' as $$
begin
  update public.organization_members m set role = new_role where m.org_id = org and m.user_id = member;
  if not found then
    return false;
  end if;
  if not exists (select 1 from public.organization_members m where m.org_id = org and m.role = 'owner') then
    raise exception 'role: an organization keeps at least one owner' using errcode = '23514';
  end if;
  return true;
end
$$;
comment on function public.set_member_role(uuid, uuid, text) is
  'Change a member''s role (owners only, by RLS); refuses to leave the organization without an owner. '
  'False when the member is not there or the caller may not change it.';
revoke all on function public.set_member_role(uuid, uuid, text) from public;
grant execute on function public.set_member_role(uuid, uuid, text) to authenticated;

create function public.remove_member(org uuid, member uuid) returns boolean
language plpgsql volatile security invoker set search_path = '' as $$
begin
  delete from public.organization_members m where m.org_id = org and m.user_id = member;
  if not found then
    return false;
  end if;
  if not exists (select 1 from public.organization_members m where m.org_id = org and m.role = 'owner') then
    raise exception 'user_id: an organization keeps at least one owner' using errcode = '23514';
  end if;
  return true;
end
$$;
comment on function public.remove_member(uuid, uuid) is
  'Remove a member (owners only, by RLS), never the last owner. False when not found or not allowed.';
revoke all on function public.remove_member(uuid, uuid) from public;
grant execute on function public.remove_member(uuid, uuid) to authenticated;

-- ---------------------------------------------------------------- analysts
-- Analyst logins see every usage row of their organization: managed by owners (members.write), listed
-- for whoever may read members. Definer, because creating a login role needs the owner's privileges.
create function public.org_analysts(org uuid)
returns table (role_name text, statement_timeout interval, created_at timestamptz)
language plpgsql stable security definer set search_path = '' as $$
begin
  if not private.has_permission(org, 'members.read') then
    raise exception 'org_id: your role may not read this organization''s analysts' using errcode = '42501';
  end if;
  return query select a.role_name, a.statement_timeout, a.created_at
               from private.analyst_roles a where a.org_id = org order by a.created_at, a.role_name;
end
$$;
comment on function public.org_analysts(uuid) is 'Analyst login roles of an organization (members.read).';
revoke all on function public.org_analysts(uuid) from public;
grant execute on function public.org_analysts(uuid) to authenticated;

create function public.create_org_analyst(org uuid, timeout interval default interval '60 seconds')
returns table (role_name text, password text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not private.has_permission(org, 'members.write') then
    raise exception 'org_id: your role may not create analyst logins here' using errcode = '42501';
  end if;
  return query select * from private.create_analyst_role(org, timeout);
end
$$;
comment on function public.create_org_analyst(uuid, interval) is
  'Create an analyst login for an organization where the caller holds members.write; the password is returned once.';
revoke all on function public.create_org_analyst(uuid, interval) from public;
grant execute on function public.create_org_analyst(uuid, interval) to authenticated;

create function public.drop_org_analyst(analyst text) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  org uuid := (select a.org_id from private.analyst_roles a where a.role_name = analyst);
begin
  if org is null or not private.has_permission(org, 'members.write') then
    return false;  -- unknown and forbidden answer alike: a caller learns nothing of other organizations
  end if;
  return private.drop_analyst_role(analyst);
end
$$;
comment on function public.drop_org_analyst(text) is
  'Drop an analyst login of an organization where the caller holds members.write; false otherwise.';
revoke all on function public.drop_org_analyst(text) from public;
grant execute on function public.drop_org_analyst(text) to authenticated;
