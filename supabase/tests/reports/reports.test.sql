-- Reports: one per organization and week, read by members whose role reads every section they restate; storing one queues its
-- deliveries (owners and admins by email, channels marked for reports) in the alert outbox, once.
begin;
select plan(19);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000f601', 'reports-a'),
                                                   ('00000000-0000-0000-0000-00000000f602', 'reports-b');
select tests.create_user(r) from unnest(array['rp_owner', 'rp_admin', 'rp_member', 'rp_viewer', 'rp_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000f601', tests.uid('rp_owner'), 'owner'),
  ('00000000-0000-0000-0000-00000000f601', tests.uid('rp_admin'), 'admin'),
  ('00000000-0000-0000-0000-00000000f601', tests.uid('rp_member'), 'member'),
  ('00000000-0000-0000-0000-00000000f601', tests.uid('rp_viewer'), 'viewer'),
  ('00000000-0000-0000-0000-00000000f602', tests.uid('rp_other'), 'owner');

-- the flag is a boolean, and PagerDuty takes no reports
select throws_ok($$ insert into public.alert_rules (org_id, name, type, channels) values
  ('00000000-0000-0000-0000-00000000f601', 'pd', 'spend_spike',
   '[{"id": "00000000-0000-0000-0000-00000000f6c9", "type": "pagerduty", "reports": true}]') $$,
  '22023', 'channels: a PagerDuty channel pages someone; it cannot receive weekly reports', 'no reports to PagerDuty');
select throws_ok($$ insert into public.alert_rules (org_id, name, type, channels) values
  ('00000000-0000-0000-0000-00000000f601', 'x', 'spend_spike',
   '[{"id": "00000000-0000-0000-0000-00000000f6c9", "type": "email", "to": ["a@example.com"], "reports": "yes"}]') $$,
  '22023', 'channels: reports is true or false', 'the flag is a boolean');

insert into public.alert_rules (id, org_id, name, type, channels) values
  ('00000000-0000-0000-0000-00000000f6a1', '00000000-0000-0000-0000-00000000f601', 'r', 'spend_spike',
   '[{"id": "00000000-0000-0000-0000-00000000f6c1", "type": "webhook", "url": "https://example.com/h", "reports": true},
     {"id": "00000000-0000-0000-0000-00000000f6c2", "type": "email", "to": ["ops@example.com"]},
     {"id": "00000000-0000-0000-0000-00000000f6c3", "type": "email", "to": ["gone@example.com"], "reports": true,
      "disabled": true}]');

insert into public.reports (id, org_id, period_start, period_end, headline, narrative, method, grounded,
                            fallback_reason, evidence) values
  ('00000000-0000-0000-0000-00000000f6e1', '00000000-0000-0000-0000-00000000f601', '2026-11-23T00:00Z',
   '2026-11-30T00:00Z', 'Spend was $33.00.', 'Body.', 'template', true, 'llm_off', '{"spend": {"this_week_usd": 33}}'),
  ('00000000-0000-0000-0000-00000000f6e2', '00000000-0000-0000-0000-00000000f601', '2026-11-16T00:00Z',
   '2026-11-23T00:00Z', 'Spend was $15.00.', 'Body.', 'template', true, 'llm_off', '{}'),
  ('00000000-0000-0000-0000-00000000f6e3', '00000000-0000-0000-0000-00000000f602', '2026-11-23T00:00Z',
   '2026-11-30T00:00Z', 'Spend was $99.00.', 'Body.', 'template', true, 'llm_off', '{}');

-- storing a report queued the owners' and admins' email and the marked, enabled channel
select results_eq($$ select channel_id::text, channel_type, kind, rule_id::text from private.alert_deliveries
                     where report_id = '00000000-0000-0000-0000-00000000f6e1' order by channel_type $$,
                  $$ values ('00000000-0000-0000-0000-00000000f601', 'email', 'report', null::text),
                            ('00000000-0000-0000-0000-00000000f6c1', 'webhook', 'report',
                             '00000000-0000-0000-0000-00000000f6a1') $$, 'deliveries queued with the report');
-- a second report for the same week is refused, so nothing is queued twice
select throws_ok($$ insert into public.reports (org_id, period_start, period_end, headline, narrative, method,
                                                grounded, fallback_reason, evidence)
                    values ('00000000-0000-0000-0000-00000000f601', '2026-11-23T00:00Z', '2026-11-30T00:00Z', 'again',
                            'b', 'template', true, 'llm_off', '{}') $$,
                 '23505', null, 'one report per organization and week');
select is((select count(*)::int from private.alert_deliveries where org_id = '00000000-0000-0000-0000-00000000f601'), 4,
          'two reports, two deliveries each');
-- a template says why, an LLM report names its model
select throws_ok($$ insert into public.reports (org_id, period_start, period_end, headline, narrative, method,
                                                grounded, evidence)
                    values ('00000000-0000-0000-0000-00000000f601', '2026-11-09T00:00Z', '2026-11-16T00:00Z', 'h',
                            'b', 'llm', true, '{}') $$,
                 '23514', null, 'an LLM report names its model');

-- claiming: the owners' and admins' addresses as an email channel, the report under `event`
update private.alert_deliveries set next_attempt_at = now() - interval '1 second'
 where org_id = '00000000-0000-0000-0000-00000000f601';
create temp table c on commit drop as
select * from private.claim_alert_deliveries('w', 10, '1 minute', '00000000-0000-0000-0000-00000000f601');
select is((select count(*)::int from c), 4, 'report deliveries are claimed');
select is((select channel -> 'to' from c where event ->> 'id' = '00000000-0000-0000-0000-00000000f6e1'
             and channel ->> 'type' = 'email'),
          '["rp_admin@tests.tokentra.local", "rp_owner@tests.tokentra.local"]'::jsonb, 'owners and admins, by email');
select results_eq($$ select kind, event #>> '{report,headline}', event ->> 'rule_id', channel ->> 'url' from c
                     where event ->> 'id' = '00000000-0000-0000-0000-00000000f6e1' and channel ->> 'type' = 'webhook' $$,
                  $$ values ('report', 'Spend was $33.00.', '00000000-0000-0000-0000-00000000f6a1',
                             'https://example.com/h') $$, 'a channel delivery carries the report and its rule');

-- a report restates usage, anomalies, budgets and recommendations: a viewer (whose role reads usage only)
-- reads none, not even through the functions
select tests.authenticate_as('rp_viewer');
select is((select count(*)::int from public.reports), 0, 'a viewer reads no report rows');
select is(public.report_list() -> 'meta' ->> 'total', '0', 'a viewer lists no report');
select is(public.report_of('00000000-0000-0000-0000-00000000f6e1'), null, 'a viewer opens no report');
select tests.clear_authentication();
-- the owners and admins the report is emailed to read it, as do members; newest week first; nobody writes
select results_eq($$ select r.role::text from (values ('owner'), ('admin'), ('member'), ('billing')) r(role)
                     where (select count(*) from private.role_permissions p where p.role = r.role
                              and p.permission in ('usage.read', 'anomalies.read', 'budgets.read',
                                                   'recommendations.read')) = 4 $$,
                  $$ values ('owner'), ('admin'), ('member'), ('billing') $$,
                  'the roles reports are emailed to (owners, admins) read every section, as do members and billing');
select tests.authenticate_as('rp_admin');
select is((select jsonb_agg(x ->> 'headline') from jsonb_array_elements(public.report_list() -> 'data') x),
          '["Spend was $33.00.", "Spend was $15.00."]'::jsonb, 'an admin lists the organization''s reports');
select tests.clear_authentication();
select tests.authenticate_as('rp_member');
select is(public.report_list(max_rows => 1, skip => 1) -> 'meta', '{"limit": 1, "offset": 1, "total": 2}'::jsonb,
          'paging');
select is(public.report_of('00000000-0000-0000-0000-00000000f6e1') #> '{evidence,spend,this_week_usd}', '33'::jsonb,
          'one report with its evidence');
select throws_ok($$ update public.reports set headline = 'x' $$, '42501', null, 'members cannot change reports');
select tests.clear_authentication();
select tests.authenticate_as('rp_other');
select is(public.report_of('00000000-0000-0000-0000-00000000f6e1'), null, 'another organization''s owner reads nothing');
select is((public.report_list() -> 'meta' ->> 'total')::int, 1, 'and lists only their own');
select tests.clear_authentication();

select * from finish();
rollback;
