-- AI spend: the internal organization's usage made on an organization's behalf this UTC month, read by
-- those who read that organization's usage, against its cap.
begin;
select plan(8);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-00000000c701', 'ai-a'), ('00000000-0000-0000-0000-00000000c702', 'ai-b');
insert into public.billing_profiles (org_id, ai_monthly_cap_usd) values ('00000000-0000-0000-0000-00000000c701', 7.5);
select tests.create_user('ai_member');
select tests.create_user('ai_outsider');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000c701', tests.uid('ai_member'), 'viewer');
-- Rows as ingest stores them: this month and last month for org a, one for org b, and a customer's own
-- row tagged with org a's id as its end user, which is no AI spend of TokenTRA's.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced, end_user_id)
values (private.internal_org_id(), now(), 'ai-1', 'openai', 'gpt-4.1-mini', 0.25, true,
        '00000000-0000-0000-0000-00000000c701'),
       (private.internal_org_id(), now(), 'ai-2', 'anthropic', 'claude-haiku-4-5', 0.5, true,
        '00000000-0000-0000-0000-00000000c701'),
       (private.internal_org_id(), date_trunc('month', now(), 'UTC') - interval '1 second', 'ai-3', 'openai',
        'gpt-4.1-mini', 9, true, '00000000-0000-0000-0000-00000000c701'),
       (private.internal_org_id(), now(), 'ai-4', 'openai', 'gpt-4.1-mini', 1, true,
        '00000000-0000-0000-0000-00000000c702'),
       ('00000000-0000-0000-0000-00000000c702', now(), 'ai-5', 'openai', 'gpt-4.1-mini', 4, true,
        '00000000-0000-0000-0000-00000000c701');

-- the month's spend on org a's behalf, its call count and its cap
select results_eq($$ select spend_usd, calls, cap_usd from public.ai_spend('00000000-0000-0000-0000-00000000c701') $$,
                  $$ values (0.75::numeric, 2::bigint, 7.5::numeric) $$, 'spend this month against the cap');
-- last month's spend is last month's
select is((select spend_usd from public.ai_spend('00000000-0000-0000-0000-00000000c701',
                                                 date_trunc('month', now(), 'UTC') - interval '1 day')),
          9::numeric, 'months are UTC calendar months');
-- an organization without a billing profile has the default cap
select is((select cap_usd from public.ai_spend('00000000-0000-0000-0000-00000000c702')), 50::numeric, 'default cap');

select tests.authenticate_as('ai_member');
-- a member who reads usage sees the spend, though not the internal organization's rows
select is((select spend_usd from public.ai_spend('00000000-0000-0000-0000-00000000c701')), 0.75::numeric,
          'readers of usage read the AI spend');
select is_empty($$ select 1 from public.usage_records where request_id like 'ai-%' and org_id <> '00000000-0000-0000-0000-00000000c701' $$,
                'the internal organization''s rows stay unreadable');
-- but nothing of another organization
select is_empty($$ select * from public.ai_spend('00000000-0000-0000-0000-00000000c702') $$, 'not a member: nothing');
select tests.clear_authentication();
select tests.authenticate_as('ai_outsider');
select is_empty($$ select * from public.ai_spend('00000000-0000-0000-0000-00000000c701') $$, 'outsider: nothing');
select tests.clear_authentication();
select tests.become_anon();
-- anonymous callers may not call it at all
select throws_ok($$ select * from public.ai_spend('00000000-0000-0000-0000-00000000c701') $$, '42501', null,
                 'anon cannot read AI spend');
select tests.clear_authentication();

select * from finish();
rollback;
