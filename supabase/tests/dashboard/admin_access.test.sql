-- What the dashboard's admin page and its session endpoint may do, by role: memberships with their
-- permissions for the caller only, members and analysts for those who may read members, role changes
-- and removals for owners, never leaving an organization without an owner.
begin;
select plan(16);

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000da0a1', 'dash-a'), ('00000000-0000-4000-8000-0000000da0b1', 'dash-b');
select tests.create_user('da_owner'), tests.create_user('da_admin'), tests.create_user('da_viewer'),
       tests.create_user('da_other');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000da0a1', tests.uid('da_owner'), 'owner'),
  ('00000000-0000-4000-8000-0000000da0a1', tests.uid('da_admin'), 'admin'),
  ('00000000-0000-4000-8000-0000000da0a1', tests.uid('da_viewer'), 'viewer'),
  ('00000000-0000-4000-8000-0000000da0b1', tests.uid('da_other'), 'owner');
-- the ids, readable once impersonating (auth.users is not)
create temp table ids on commit drop as
  select tests.uid('da_owner') as owner, tests.uid('da_viewer') as viewer, tests.uid('da_other') as other;
grant select on ids to authenticated;

-- a user sees their own memberships, with the role's permissions
select tests.authenticate_as('da_viewer');
select results_eq($$ select name, role from public.my_organizations() $$,
                  $$ values ('dash-a'::text, 'viewer'::text) $$, 'a viewer sees its one membership');
select is((select permissions from public.my_organizations()), array['organization.read', 'usage.read'],
          'the permissions are the role''s, from the role matrix');

-- a viewer may not list members or analysts
select throws_ok($$ select * from public.org_members('00000000-0000-4000-8000-0000000da0a1') $$, '42501', null,
                 'a viewer cannot list members');
select throws_ok($$ select * from public.org_analysts('00000000-0000-4000-8000-0000000da0a1') $$, '42501', null,
                 'a viewer cannot list analysts');

-- an admin lists members with their emails, but cannot change roles (RLS: owners only)
select tests.clear_authentication();
select tests.authenticate_as('da_admin');
select results_eq($$ select email, role from public.org_members('00000000-0000-4000-8000-0000000da0a1') order by role $$,
                  $$ values ('da_admin@tests.tokentra.local'::text, 'admin'::text),
                            ('da_owner@tests.tokentra.local', 'owner'), ('da_viewer@tests.tokentra.local', 'viewer') $$,
                  'an admin lists the members with email and role');
select throws_ok($$ select * from public.org_members('00000000-0000-4000-8000-0000000da0b1') $$, '42501', null,
                 'nobody lists another organization''s members');
select is(public.set_member_role('00000000-0000-4000-8000-0000000da0a1', (select viewer from ids), 'member'), false,
          'an admin cannot change a role');
select throws_ok($$ select * from public.create_org_analyst('00000000-0000-4000-8000-0000000da0a1') $$, '42501', null,
                 'an admin cannot create analyst logins');

-- an owner changes roles and removes members, never the last owner
select tests.clear_authentication();
select tests.authenticate_as('da_owner');
select is(public.set_member_role('00000000-0000-4000-8000-0000000da0a1', (select viewer from ids), 'member'), true,
          'an owner changes a role');
select throws_ok($$ select public.set_member_role('00000000-0000-4000-8000-0000000da0a1', (select owner from ids), 'admin') $$,
                 '23514', null, 'the last owner cannot be demoted');
select throws_ok($$ select public.remove_member('00000000-0000-4000-8000-0000000da0a1', (select owner from ids)) $$,
                 '23514', null, 'the last owner cannot be removed');
select is(public.remove_member('00000000-0000-4000-8000-0000000da0b1', (select other from ids)), false,
          'an owner cannot remove members of another organization');
select is(public.remove_member('00000000-0000-4000-8000-0000000da0a1', (select viewer from ids)), true,
          'an owner removes a member');

-- analysts: an owner creates, lists and drops them; another organization's owner cannot drop them
select tests.clear_authentication();
select tests.authenticate_as('da_owner');
create temp table made on commit drop as
  select * from public.create_org_analyst('00000000-0000-4000-8000-0000000da0a1', interval '30 seconds');
grant select on made to authenticated;
select is((select count(*)::integer from public.org_analysts('00000000-0000-4000-8000-0000000da0a1') a
            join made m on m.role_name = a.role_name), 1, 'an owner creates and lists an analyst login');
select tests.clear_authentication();
select tests.authenticate_as('da_other');
select is(public.drop_org_analyst((select role_name from made)), false,
          'another organization''s owner cannot drop it');
select tests.clear_authentication();
select tests.authenticate_as('da_owner');
select is(public.drop_org_analyst((select role_name from made)), true, 'its owner drops it');

select * from finish();
rollback;
