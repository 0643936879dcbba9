-- An analyst login sees its organization's usage through the analytics views and nothing else, cannot
-- write, and cannot borrow a user's identity; a user of another organization sees none of it either.
begin;
select plan(10);

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000a1a0a', 'analyst-a'), ('00000000-0000-4000-8000-0000000a1a0b', 'analyst-b');
select tests.create_user('an_owner_a');
insert into public.organization_members (org_id, user_id, role)
values ('00000000-0000-4000-8000-0000000a1a0a', tests.uid('an_owner_a'), 'owner');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, feature, cost_usd, priced)
select o, now() - g * interval '1 hour', 'an-' || o || g, 'openai', 'gpt-4o', 'f-' || right(o::text, 1), 0.01, true
from unnest(array['00000000-0000-4000-8000-0000000a1a0a', '00000000-0000-4000-8000-0000000a1a0b']::uuid[]) o,
     generate_series(1, 5) g;

select role_name as analyst from private.create_analyst_role('00000000-0000-4000-8000-0000000a1a0b') \gset
select tests.uid('an_owner_a') as owner_a \gset
set local session authorization :"analyst";

-- the analyst's organization, through every view
select results_eq($$ select distinct org_id from analytics.usage_records $$,
                  $$ values ('00000000-0000-4000-8000-0000000a1a0b'::uuid) $$, 'raw rows: own organization only');
select results_eq($$ select distinct org_id from analytics.usage_daily $$,
                  $$ values ('00000000-0000-4000-8000-0000000a1a0b'::uuid) $$, 'daily rollups: own organization only');
select results_eq($$ select distinct feature from analytics.usage_hourly $$, $$ values ('f-b') $$,
                  'hourly rollups: own organization only');
select is_empty($$ select 1 from private.usage_rollup_deltas where org_id = '00000000-0000-4000-8000-0000000a1a0a' $$,
                'the rollup tables apply the same policy');

-- claims do not make an analyst a user
select set_config('request.jwt.claims', json_build_object('sub', :'owner_a', 'role', 'authenticated')::text, true);
select is_empty($$ select 1 from analytics.usage_records where org_id = '00000000-0000-4000-8000-0000000a1a0a' $$,
                'forged JWT claims grant nothing');
select throws_ok($$ set role authenticated $$, '42501', null, 'an analyst cannot become authenticated');

-- read-only, whatever the session setting
set local default_transaction_read_only = off;
select throws_ok($$ insert into public.usage_records (org_id, occurred_at, request_id, provider, model)
                    values ('00000000-0000-4000-8000-0000000a1a0b', now(), 'x', 'p', 'm') $$,
                 '42501', null, 'an analyst cannot write usage');
select throws_ok($$ select * from public.organizations $$, '42501', null, 'nor read tables outside analytics');
reset session authorization;

-- the other direction: a user of organization A sees nothing of B
select tests.authenticate_as('an_owner_a');
select is_empty($$ select 1 from analytics.usage_daily where org_id = '00000000-0000-4000-8000-0000000a1a0b' $$,
                'a user of another organization sees none of the analyst''s organization');
select tests.clear_authentication();

-- the timeout watchdog is scheduled
select case when tests.has_cron()
  then is(tests.cron_schedule('tokentra-analyst-timeouts'), '* * * * *',
          'the statement-timeout watchdog runs every minute from pg_cron')
  else is((select schedule from private.periodic_jobs where name = 'tokentra-analyst-timeouts'), '* * * * *',
          'the statement-timeout watchdog runs every minute from the worker (no pg_cron here)') end;

select * from finish();
rollback;
