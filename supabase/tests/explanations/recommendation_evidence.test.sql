-- recommendation_evidence carries the recommendation's own figures (current - projected = savings) and the
-- detector's scalar facts, rounded, without series; explanations are read by who reads their subject.
begin;
select plan(9);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000e321', 'rec-a'),
                                                   ('00000000-0000-0000-0000-00000000e322', 'rec-b');
select tests.create_user(r) from unnest(array['re_member', 're_viewer', 're_admin', 're_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000e321', tests.uid('re_member'), 'member'),
  ('00000000-0000-0000-0000-00000000e321', tests.uid('re_viewer'), 'viewer'),
  ('00000000-0000-0000-0000-00000000e321', tests.uid('re_admin'), 'admin'),
  ('00000000-0000-0000-0000-00000000e322', tests.uid('re_other'), 'owner');
insert into public.recommendations (id, org_id, category, scope_type, scope_value, fingerprint, title,
                                    current_monthly_cost, projected_monthly_cost, estimated_monthly_savings,
                                    savings_method, confidence, evidence) values
  ('00000000-0000-0000-0000-00000000e3c1', '00000000-0000-0000-0000-00000000e321', 'task_aware_routing', 'feature',
   'classify', 'fp-e1', 'Route classify to gpt-4o-mini', 1250.5, 310.25, 940.25, 'tokens repriced', 0.8,
   '{"requests": 120000, "cost_per_request": 0.0104208333333, "model": "gpt-4o", "target_model": "gpt-4o-mini",
     "series": {"2026-11-01": 40.1}, "sample_request_ids": ["r-1"], "busiest_hours_utc": [9, 10],
     "scope": {"feature": "classify"}}');
insert into public.anomalies (id, org_id, metric, severity, window_start) values
  ('00000000-0000-0000-0000-00000000e3d1', '00000000-0000-0000-0000-00000000e321', 'cost', 'high', now() - interval '1 hour');

create temp table ev on commit drop as
select public.recommendation_evidence('00000000-0000-0000-0000-00000000e3c1') as e;

-- the savings are what current minus projected leaves, a month and a year
select is((select (e #>> '{recommendation,current_monthly_cost_usd}')::numeric
                  - (e #>> '{recommendation,projected_monthly_cost_usd}')::numeric from ev),
          (select (e #>> '{recommendation,estimated_monthly_savings_usd}')::numeric from ev), 'current - projected = savings');
select is((select e #> '{recommendation,estimated_yearly_savings_usd}' from ev), '11283'::jsonb, 'twelve months of savings');
select is((select e #> '{recommendation,savings_pct}' from ev), '75.2'::jsonb, 'savings as a share of current cost');
-- the detector's facts, rounded to 6 places, series and request ids left out
select is((select e -> 'facts' from ev),
          '{"requests": 120000, "cost_per_request": 0.010421, "model": "gpt-4o", "target_model": "gpt-4o-mini",
            "busiest_hours_utc": [9, 10]}'::jsonb, 'scalar facts only');

insert into public.explanations (org_id, recommendation_id, headline, body, source, fallback_reason, evidence)
select '00000000-0000-0000-0000-00000000e321', '00000000-0000-0000-0000-00000000e3c1', 'h', 'b', 'template', 'llm_off', e
from ev;
insert into public.explanations (org_id, anomaly_id, headline, body, source, model, evidence) values
  ('00000000-0000-0000-0000-00000000e321', '00000000-0000-0000-0000-00000000e3d1', 'h', 'b', 'llm', 'gpt-4.1-mini', '{}');
-- an explanation names exactly one subject
select throws_ok($$ insert into public.explanations (org_id, headline, body, source, fallback_reason, evidence)
                    values ('00000000-0000-0000-0000-00000000e321', 'h', 'b', 'template', 'llm_off', '{}') $$,
                 '23514', null, 'no subject is refused');

-- a member reads recommendations, so their explanations; a viewer reads neither recommendations nor anomalies
select tests.authenticate_as('re_member');
select is(public.explanation_of(recommendation => '00000000-0000-0000-0000-00000000e3c1') ->> 'source', 'template',
          'a member reads a recommendation''s explanation');
select tests.clear_authentication();
select tests.authenticate_as('re_viewer');
select is(public.explanation_of(anomaly => '00000000-0000-0000-0000-00000000e3d1'), null,
          'a viewer does not read an anomaly''s');
select tests.clear_authentication();
select tests.authenticate_as('re_admin');
select is(public.explanation_of(anomaly => '00000000-0000-0000-0000-00000000e3d1') ->> 'model', 'gpt-4.1-mini',
          'an admin reads the anomaly''s');
select tests.clear_authentication();
select tests.authenticate_as('re_other');
select is(public.recommendation_evidence('00000000-0000-0000-0000-00000000e3c1'), null,
          'another organization reads no evidence');
select tests.clear_authentication();

select * from finish();
rollback;
