-- The reconciliation's SQL entry points granted to signed-in users: ranges past 400 days (the usage
-- retention) are refused naming the field, and re-pricing checks the caller's role, not whether the
-- request carries a user id.
begin;
select plan(6);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-0000000de001', 'caps a'), ('00000000-0000-0000-0000-0000000de002', 'caps b');
select tests.create_user(r) from unnest(array['dc_admin', 'dc_member']) r;
insert into public.organization_members values
  ('00000000-0000-0000-0000-0000000de001', tests.uid('dc_admin'), 'admin'),
  ('00000000-0000-0000-0000-0000000de001', tests.uid('dc_member'), 'member');
insert into private.reconciliation_daily (org_id, day, provider, canonical_model, tracked_cost_usd, billed_cost_usd,
                                          gap_usd)
values ('00000000-0000-0000-0000-0000000de001', current_date - 2, 'openai', 'gpt-4o', 80, 100, 20),
       ('00000000-0000-0000-0000-0000000de002', current_date - 2, 'openai', 'gpt-4o', 80, 100, 20);
insert into private.reconciliation_causes (org_id, day, provider, canonical_model, cause, amount_usd) values
  ('00000000-0000-0000-0000-0000000de001', current_date - 2, 'openai', 'gpt-4o', 'untracked_traffic', 20),
  ('00000000-0000-0000-0000-0000000de002', current_date - 2, 'openai', 'gpt-4o', 'untracked_traffic', 20);

-- ranges past the usage retention, straight through SQL
select tests.authenticate_as('dc_member');
select throws_ok($$ select public.reconciliation_report(null, current_date - 400, current_date) $$,
  '22023', 'end_date: a range holds at most 400 days', 'a report over 401 days is refused');
select lives_ok($$ select public.reconciliation_report(null, current_date - 399, current_date) $$,
  'a report over 400 days is answered');
select throws_ok($$ select public.reconciliation_report(null, current_date, current_date - 1) $$,
  '22023', 'end_date: must not be before start_date', 'a reversed range is refused');
select tests.clear_authentication();

-- re-pricing: a signed-in session without a user id no longer skips the permission check
select set_config('request.jwt.claims', '{"role": "authenticated"}', true), set_config('role', 'authenticated', true);
select throws_ok($$ select public.reprice_from_bill('00000000-0000-0000-0000-0000000de001', 'openai', 'gpt-4o') $$,
  '42501', null, 'authenticated without a user id is refused');
select tests.clear_authentication();
select set_config('role', 'service_role', true);
select throws_ok($$ select public.reprice_from_bill('00000000-0000-0000-0000-0000000de001', 'openai', 'gpt-4o',
                                                    current_date - 400, current_date) $$,
  '22023', 'last_day: a range holds at most 400 days', 'the service role passes the check, and the range is capped');
reset role;
select tests.authenticate_as('dc_admin');
select throws_ok($$ select public.reprice_from_bill('00000000-0000-0000-0000-0000000de001', 'openai', 'gpt-4o') $$,
  '22023', null, 'a price writer passes the check (and finds no price gap to fix)');
select tests.clear_authentication();

select * from finish();
rollback;
