-- Who reads budgets and what they hold: members read them, viewers and outsiders do not;
-- reservations are visible to their organization's readers only and written by the service only.
begin;
select plan(7);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000bf001', 'a'),
                                                   ('00000000-0000-0000-0000-0000000bf002', 'b');
select tests.create_user(r) from unnest(array['bf_member', 'bf_viewer', 'bf_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-0000000bf001', tests.uid('bf_member'), 'member'),
  ('00000000-0000-0000-0000-0000000bf001', tests.uid('bf_viewer'), 'viewer'),
  ('00000000-0000-0000-0000-0000000bf002', tests.uid('bf_other'), 'admin');
insert into public.budgets (org_id, name, amount, period, hard_limit)
values ('00000000-0000-0000-0000-0000000bf001', 'a', 1, 'daily', true);
select private.reserve_budget('00000000-0000-0000-0000-0000000bf001', null, 'openai', 'gpt-4o', 100, 100, '{}',
                              '10 minutes');

select tests.authenticate_as('bf_member');
-- a member reads the budget with its live status, and what is reserved against it
select results_eq($$ select status from public.budget_status $$, $$ values ('ok') $$, 'a member reads budget status');
select isnt_empty($$ select 1 from private.budget_holds $$, 'a member sees the holds');
-- but cannot hold spend itself
select throws_ok($$ insert into private.budget_holds select * from private.budget_holds $$, '42501', null,
                 'users cannot write holds');
select tests.clear_authentication();

select tests.authenticate_as('bf_viewer');
select is_empty($$ select 1 from public.budget_status $$, 'a viewer reads no budgets');
select tests.clear_authentication();

create temp table a_budget as select * from public.budgets where org_id = '00000000-0000-0000-0000-0000000bf001';
grant select on a_budget to authenticated;
select tests.authenticate_as('bf_other');
select is_empty($$ select 1 from private.budget_reservations $$, 'another organization sees no reservations');
-- scope resolution refuses to look into an organization the caller cannot read
select is_empty($$ select * from private.budget_scope_match(
                     (select jsonb_populate_record(null::public.budgets, to_jsonb(a)) from a_budget a)) $$,
                'no scope resolved for a budget the caller may not read');
select tests.clear_authentication();
-- the reserve function is the service's: users may not call it
select ok(not has_function_privilege('authenticated',
          'private.reserve_budget(uuid, uuid, text, text, bigint, bigint, jsonb, interval, bigint)', 'execute'),
          'users cannot reserve');

select * from finish();
rollback;
