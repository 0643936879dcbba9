-- Tenancy: organizations, members and their roles, teams, projects, and the RLS helpers.

-- ---------------------------------------------------------------- organizations
create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null constraint name_is_not_blank check (btrim(name) <> ''),
  slug text unique,
  plan text not null default 'free' constraint plan_is_known check (plan in ('free', 'team', 'enterprise')),
  timezone text not null default 'UTC',
  store_prompts boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.organizations is 'A tenant. Every other row belongs to one.';
comment on column public.organizations.store_prompts is 'Opt-in: keep prompt text; otherwise only hashes are stored.';
create trigger touch_updated_at before update on public.organizations
  for each row execute function private.touch_updated_at();

create table public.organization_members (
  org_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null constraint role_is_known
    check (role in ('owner', 'admin', 'member', 'viewer', 'billing')),
  created_at timestamptz not null default now(),
  primary key (org_id, user_id)
);
-- The RLS helpers look memberships up by user: this index makes that one probe.
create index organization_members_user_id_idx on public.organization_members (user_id, org_id);
create trigger forbid_org_change before update on public.organization_members
  for each row execute function private.forbid_org_change();

-- ---------------------------------------------------------------- permissions
-- The role matrix, as data: owner does all; admin reads all and writes teams, projects, budgets,
-- alerts and API keys; member reads costs, usage, recommendations, teams and projects; viewer reads
-- costs and usage; billing reads all and writes billing.
create table private.role_permissions (
  role text not null,
  permission text not null,
  primary key (role, permission)
);
alter table private.role_permissions enable row level security;

insert into private.role_permissions (role, permission)
select r.role, p.resource || '.read'
from (values ('owner'), ('admin'), ('billing')) r(role),
     (values ('organization'), ('members'), ('teams'), ('projects'), ('api_keys'), ('providers'),
             ('usage'), ('budgets'), ('alerts'), ('recommendations'), ('routing'), ('anomalies'),
             ('cache'), ('audit'), ('billing')) p(resource)
union all
select 'owner', p.resource || '.write'
from (values ('organization'), ('members'), ('teams'), ('projects'), ('api_keys'), ('providers'),
             ('budgets'), ('alerts'), ('recommendations'), ('routing'), ('anomalies'), ('cache'),
             ('billing')) p(resource)
union all
select 'admin', w from unnest(array['teams.write', 'projects.write', 'budgets.write', 'alerts.write',
                                    'api_keys.write']) w
union all
select 'billing', 'billing.write'
union all
select 'member', r from unnest(array['organization.read', 'usage.read', 'recommendations.read',
                                     'teams.read', 'projects.read']) r
union all
select 'viewer', r from unnest(array['organization.read', 'usage.read']) r;

-- The organizations in which the current user holds a permission. Policies call it as
-- `org_id = any ((select private.org_ids_with('x.read'))::uuid[])` so it runs once per query, not per row.
create function private.org_ids_with(permission text) returns uuid[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(m.org_id), '{}')
  from public.organization_members m
  join private.role_permissions p on p.role = m.role and p.permission = org_ids_with.permission
  where m.user_id = (select auth.uid())
$$;
comment on function private.org_ids_with(text) is
  'Organizations where the current user''s role grants the permission (resource.read|write).';
revoke all on function private.org_ids_with(text) from public;
grant execute on function private.org_ids_with(text) to authenticated, service_role;

-- Whether the current user holds a permission in one organization (for functions, not policies).
create function private.has_permission(org uuid, permission text) returns boolean
language sql stable security definer set search_path = '' as $$
  select org = any (private.org_ids_with(permission))
$$;
comment on function private.has_permission(uuid, text) is 'True when the current user holds permission in org.';
revoke all on function private.has_permission(uuid, text) from public;
grant execute on function private.has_permission(uuid, text) to authenticated, service_role;

-- Standard policies for a tenant table: read with `<resource>.read`, write with `<resource>.write`,
-- all `to authenticated`, named as sentences. Called once per table, next to its definition.
create function private.create_tenant_policies(tbl regclass, resource text, writable boolean default true)
returns void
language plpgsql volatile set search_path = '' as $$
declare
  r text := resource || '.read';
  w text := resource || '.write';
begin
  execute format('alter table %s enable row level security', tbl);
  execute format('create policy "members with %s read rows of their organizations" on %s for select '
                 'to authenticated using (org_id = any ((select private.org_ids_with(%L))::uuid[]))', r, tbl, r);
  if writable then
    execute format('create policy "members with %s insert rows into their organizations" on %s '
                   'for insert to authenticated with check (org_id = any ((select private.org_ids_with(%L))::uuid[]))',
                   w, tbl, w);
    execute format('create policy "members with %s update rows of their organizations" on %s '
                   'for update to authenticated using (org_id = any ((select private.org_ids_with(%L))::uuid[])) '
                   'with check (org_id = any ((select private.org_ids_with(%L))::uuid[]))', w, tbl, w, w);
    execute format('create policy "members with %s delete rows of their organizations" on %s '
                   'for delete to authenticated using (org_id = any ((select private.org_ids_with(%L))::uuid[]))',
                   w, tbl, w);
    execute format('create trigger forbid_org_change before update on %s '
                   'for each row execute function private.forbid_org_change()', tbl);
  end if;
end
$$;
comment on function private.create_tenant_policies(regclass, text, boolean) is
  'Install the read/write RLS policies and the org_id guard for a table with an org_id column.';
revoke all on function private.create_tenant_policies(regclass, text, boolean) from public;

-- ---------------------------------------------------------------- organization policies
alter table public.organizations enable row level security;
create policy "members read their organizations" on public.organizations for select to authenticated
  using (id = any ((select private.org_ids_with('organization.read'))::uuid[]));
create policy "owners update their organizations" on public.organizations for update to authenticated
  using (id = any ((select private.org_ids_with('organization.write'))::uuid[]))
  with check (id = any ((select private.org_ids_with('organization.write'))::uuid[]));
create policy "owners delete their organizations" on public.organizations for delete to authenticated
  using (id = any ((select private.org_ids_with('organization.write'))::uuid[]));
-- Organizations are created by the service (CLI, sign-up flow), which also makes the first owner.
grant select, delete on public.organizations to authenticated;
grant update (name, slug, timezone, store_prompts) on public.organizations to authenticated;

alter table public.organization_members enable row level security;
create policy "users read their own memberships" on public.organization_members for select
  to authenticated using (user_id = (select auth.uid()));
create policy "members with members.read read their organizations' members"
  on public.organization_members for select to authenticated
  using (org_id = any ((select private.org_ids_with('members.read'))::uuid[]));
create policy "owners add members" on public.organization_members for insert to authenticated
  with check (org_id = any ((select private.org_ids_with('members.write'))::uuid[]));
create policy "owners change members' roles" on public.organization_members for update to authenticated
  using (org_id = any ((select private.org_ids_with('members.write'))::uuid[]))
  with check (org_id = any ((select private.org_ids_with('members.write'))::uuid[]));
create policy "owners remove members" on public.organization_members for delete to authenticated
  using (org_id = any ((select private.org_ids_with('members.write'))::uuid[]));
grant select, insert, delete on public.organization_members to authenticated;
grant update (role) on public.organization_members to authenticated;

-- ---------------------------------------------------------------- teams and projects
create table public.teams (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  name text not null constraint name_is_not_blank check (btrim(name) <> ''),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint team_name_is_unique_in_organization unique (org_id, name)
);
create trigger touch_updated_at before update on public.teams
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.teams', 'teams');
grant select, insert, update, delete on public.teams to authenticated;

create table public.projects (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  team_id uuid references public.teams (id) on delete set null,
  name text not null constraint name_is_not_blank check (btrim(name) <> ''),
  environment text not null default 'production',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint project_name_is_unique_in_organization unique (org_id, name)
);
create index projects_team_id_idx on public.projects (team_id);
create trigger touch_updated_at before update on public.projects
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.projects', 'projects');
grant select, insert, update, delete on public.projects to authenticated;

create table public.billing_profiles (
  org_id uuid primary key references public.organizations (id) on delete cascade,
  billing_email text,
  ai_monthly_cap_usd numeric(12, 2) not null default 50
    constraint ai_cap_is_not_negative check (ai_monthly_cap_usd >= 0),
  updated_at timestamptz not null default now()
);
comment on column public.billing_profiles.ai_monthly_cap_usd is
  'Cap on the LLM spend TokenTRA itself makes on the organization''s behalf each month.';
create trigger touch_updated_at before update on public.billing_profiles
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.billing_profiles', 'billing');
grant select, insert, update, delete on public.billing_profiles to authenticated;
