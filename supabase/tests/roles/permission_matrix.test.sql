-- The role matrix: owner all; admin writes teams, projects, budgets, alerts, keys but not provider
-- connections; member reads recommendations and budgets but writes neither; viewer reads usage
-- only; billing writes billing.
begin;
select plan(14);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000a001', 'matrix');
select tests.create_user(r) from unnest(array['mx_owner', 'mx_admin', 'mx_member', 'mx_viewer', 'mx_billing']) r;
insert into public.organization_members (org_id, user_id, role)
select '00000000-0000-0000-0000-00000000a001', tests.uid('mx_' || r), r
from unnest(array['owner', 'admin', 'member', 'viewer', 'billing']) r;
select tests.seed_org('00000000-0000-0000-0000-00000000a001', 'mx');

-- admin creates a budget
select tests.authenticate_as('mx_admin');
select lives_ok($$ insert into public.budgets (org_id, name, amount, period)
                   values ('00000000-0000-0000-0000-00000000a001', 'admin budget', 10, 'daily') $$,
                'admin writes budgets');
-- admin cannot add a provider connection
select throws_ok($$ insert into public.provider_connections (org_id, provider, key_hint, ciphertext, wrapped_key)
                    values ('00000000-0000-0000-0000-00000000a001', 'anthropic', 'x', '\x01', '\x02') $$,
                 '42501', null, 'admin cannot write provider connections');
-- admin cannot read the encrypted material of a connection
select throws_ok($$ select ciphertext from public.provider_connections $$, '42501', null,
                 'encrypted secrets are unreadable to users');
select tests.clear_authentication();

-- member reads recommendations, teams, budgets and anomalies
select tests.authenticate_as('mx_member');
select isnt_empty($$ select 1 from public.recommendations $$, 'member reads recommendations');
select isnt_empty($$ select 1 from public.budgets $$, 'member reads budgets');
select isnt_empty($$ select 1 from public.anomalies $$, 'member reads anomalies');
select throws_ok($$ insert into public.teams (org_id, name) values ('00000000-0000-0000-0000-00000000a001', 'm') $$,
                 '42501', null, 'member cannot write teams');
select tests.clear_authentication();

-- viewer reads usage, nothing else
select tests.authenticate_as('mx_viewer');
select isnt_empty($$ select 1 from public.usage_records $$, 'viewer reads usage');
select is_empty($$ select 1 from public.recommendations $$, 'viewer reads no recommendations');
select is_empty($$ select 1 from public.anomalies $$, 'viewer reads no anomalies');
select tests.clear_authentication();

-- billing writes billing, reads budgets, cannot write budgets
select tests.authenticate_as('mx_billing');
select lives_ok($$ update public.billing_profiles set billing_email = 'ap@example.com' $$, 'billing writes billing');
select isnt_empty($$ select 1 from public.budgets $$, 'billing reads budgets');
select throws_ok($$ insert into public.budgets (org_id, name, amount, period)
                    values ('00000000-0000-0000-0000-00000000a001', 'b', 10, 'daily') $$,
                 '42501', null, 'billing cannot write budgets');
select tests.clear_authentication();

-- every configuration change was audited with its actor
select ok((select count(*) from public.audit_logs
           where org_id = '00000000-0000-0000-0000-00000000a001' and table_name = 'budgets'
             and actor = tests.uid('mx_admin')) = 1, 'the admin''s budget insert is in the audit log');

select * from finish();
rollback;
