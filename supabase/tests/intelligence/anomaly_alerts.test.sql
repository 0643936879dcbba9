-- Anomalies: one alert event per (anomaly rule, open anomaly), never two, resolved when the anomaly
-- closes; the listing runs under the caller's RLS.
begin;
select plan(7);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000a601', 'a'),
                                                   ('00000000-0000-0000-0000-00000000a602', 'b');
select tests.create_user(r) from unnest(array['an_admin', 'an_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000a601', tests.uid('an_admin'), 'admin'),
  ('00000000-0000-0000-0000-00000000a602', tests.uid('an_other'), 'admin');
insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-00000000a601', 'high cost anomalies', 'anomaly', '{"min_severity": "high", "metric": "cost"}');
insert into public.anomalies (id, org_id, metric, dimension, dimension_value, severity, window_start, expected_value,
                              actual_value, money_involved) values
  ('00000000-0000-0000-0000-00000000a6a1', '00000000-0000-0000-0000-00000000a601', 'cost', 'feature', 'summarize',
   'critical', now() - interval '2 hours', 3, 30, 54),
  ('00000000-0000-0000-0000-00000000a6a2', '00000000-0000-0000-0000-00000000a601', 'cost', 'model', 'gpt-4o',
   'low', now() - interval '2 hours', 3, 4, 1),
  ('00000000-0000-0000-0000-00000000a6a3', '00000000-0000-0000-0000-00000000a601', 'latency_ms', 'organization', null,
   'critical', now() - interval '2 hours', 300, 3000, 0);

-- only the anomaly at or above the rule's severity, of its metric, raises an event
select is((private.sync_anomaly_alerts('00000000-0000-0000-0000-00000000a601') ->> 'raised')::int, 1,
          'one event raised');
-- a rerun raises nothing more
select is((private.sync_anomaly_alerts('00000000-0000-0000-0000-00000000a601') ->> 'raised')::int, 0,
          'a rerun raises nothing');
-- the event went into the delivery path with the anomaly's numbers
select results_eq($$ select severity, details ->> 'dimension_value' from public.alert_events
                      where org_id = '00000000-0000-0000-0000-00000000a601' $$,
                  $$ values ('critical', 'summarize') $$, 'the event carries the anomaly');
-- closing the anomaly resolves the event
update public.anomalies set status = 'closed' where id = '00000000-0000-0000-0000-00000000a6a1';
select is((private.sync_anomaly_alerts('00000000-0000-0000-0000-00000000a601') ->> 'resolved')::int, 1,
          'the event is resolved when the anomaly closes');

select tests.authenticate_as('an_admin');
-- the listing shows the organization's anomalies, filtered
select is(jsonb_array_length(public.anomaly_list(metric => 'cost') -> 'data'), 2, 'an admin lists its anomalies');
select is(jsonb_array_length(public.anomaly_list(severity => 'critical', status => 'open') -> 'data'), 1,
          'filters apply');
select tests.clear_authentication();

select tests.authenticate_as('an_other');
select is(public.anomaly_list() -> 'data', '[]'::jsonb, 'another organization sees none of them');
select tests.clear_authentication();

select * from finish();
rollback;
