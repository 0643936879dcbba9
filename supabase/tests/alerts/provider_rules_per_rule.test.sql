-- A provider_degraded rule the evaluation cannot read (written straight through SQL) is skipped and named;
-- the other organizations' provider rules still evaluate.
begin;
select plan(3);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-0000000d7001', 'prov a'), ('00000000-0000-0000-0000-0000000d7002', 'prov b');
insert into public.alert_rules (id, org_id, name, type, condition) values
  ('00000000-0000-0000-0000-0000000d70b1', '00000000-0000-0000-0000-0000000d7001', 'bad', 'provider_degraded',
   '{"provider": "openai", "min_requests": "many", "max_p95_ms": "abc"}'),
  ('00000000-0000-0000-0000-0000000d70a1', '00000000-0000-0000-0000-0000000d7002', 'good', 'provider_degraded',
   '{"provider": "no-such-provider"}');
-- b's rule has an open event and its provider no health: it resolves
insert into public.alert_events (org_id, rule_id, dedup_key, title) values
  ('00000000-0000-0000-0000-0000000d7002', '00000000-0000-0000-0000-0000000d70a1', 'provider_degraded:test', 'down');

create temp table run1 as select private.evaluate_provider_alerts() as r;
select is((select jsonb_path_query_array(r, '$.failed[*].rule_id') from run1),
          '["00000000-0000-0000-0000-0000000d70b1"]'::jsonb, 'the unreadable rule is skipped and named');
select is((select r ->> 'resolved' from run1), '1', 'the other rule still evaluated');
select is((select status from public.alert_events where rule_id = '00000000-0000-0000-0000-0000000d70a1'), 'resolved',
          'and its event is resolved');

select * from finish();
rollback;
