-- Team and project budgets by the names usage tags carry: a name seen in usage is a scope (its row is
-- created), a name never seen is refused, and the periodic job adopts new names by itself.
begin;
select plan(9);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000c5001', 'tags');
select tests.create_user('ts_admin');
insert into public.organization_members (org_id, user_id, role)
values ('00000000-0000-0000-0000-0000000c5001', tests.uid('ts_admin'), 'admin');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  team, project, cost_usd)
values ('00000000-0000-0000-0000-0000000c5001', now(), 'ts-1', 'openai', 'gpt-4o', 1000, 500, 'search', 'web', 0.5),
       ('00000000-0000-0000-0000-0000000c5001', now(), 'ts-2', 'openai', 'gpt-4o', 1000, 500, 'growth', null, 0.25);

select tests.authenticate_as('ts_admin');
-- no rows yet: the SDK's tags never wrote any
select is_empty($$ select 1 from public.teams where name = 'search' $$, 'tags alone leave no team row');
-- a budget names the team as the tags do
select lives_ok($$ insert into public.budgets (org_id, name, amount, period, scope_type, scope_id)
                   values ('00000000-0000-0000-0000-0000000c5001', 'search', 10, 'monthly', 'team', 'search') $$,
                'a team budget accepts a team name seen in usage');
-- the team row now exists and the budget points at it by id
select results_eq($$ select b.scope_id from public.budgets b where b.name = 'search' $$,
                  $$ select t.id::text from public.teams t where t.name = 'search' $$,
                  'the budget is stored against the adopted team''s id');
-- and it counts the spend tagged with that name
select results_eq($$ select current_spend > 0 from public.budget_status where name = 'search' $$,
                  $$ values (true) $$, 'the team budget sees the tagged spend');
-- projects the same way
select lives_ok($$ insert into public.budgets (org_id, name, amount, period, scope_type, scope_id)
                   values ('00000000-0000-0000-0000-0000000c5001', 'web', 10, 'monthly', 'project', 'web') $$,
                'a project budget accepts a project name seen in usage');
-- a name never seen is still refused, naming the field
select throws_ok($$ insert into public.budgets (org_id, name, amount, period, scope_type, scope_id)
                    values ('00000000-0000-0000-0000-0000000c5001', 'typo', 10, 'monthly', 'team', 'serach') $$,
                 '23503', 'scope_id: no team serach in this organization', 'an unseen team name is refused');
select tests.clear_authentication();

-- the periodic job adopts the names of recent usage
select matches(private.adopt_tag_scopes(), '^\d+ team\(s\) and \d+ project\(s\) adopted', 'the job says what it did');
select results_eq($$ select name from public.teams where org_id = '00000000-0000-0000-0000-0000000c5001' order by name $$,
                  $$ values ('growth'), ('search') $$, 'every team name in usage has a row');
-- users cannot run it
select ok(not has_function_privilege('authenticated', 'private.adopt_tag_scopes()', 'execute'),
          'only the service runs the adoption job');

select * from finish();
rollback;
