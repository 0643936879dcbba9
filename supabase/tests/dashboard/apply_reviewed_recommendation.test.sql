-- An owner applies (and another dismisses) a recommendation that a consensus review stands on, as the
-- dashboard does through the functions.
begin;
select plan(3);

insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000da2a1', 'reviewed');
select tests.create_user('rev_owner');
insert into public.organization_members (org_id, user_id, role)
values ('00000000-0000-4000-8000-0000000da2a1', tests.uid('rev_owner'), 'owner');
insert into public.recommendations (id, org_id, category, fingerprint, title, current_monthly_cost,
                                    estimated_monthly_savings, suggested_rule)
values ('00000000-0000-4000-8000-0000000da2b1', '00000000-0000-4000-8000-0000000da2a1', 'task_aware_routing', 'rev-1',
        'Route to a smaller model', 500, 400, '{"conditions": {}, "action": {"model": "gpt-4o-mini"}}'),
       ('00000000-0000-4000-8000-0000000da2b2', '00000000-0000-4000-8000-0000000da2a1', 'task_aware_routing', 'rev-2',
        'Route to another model', 500, 400, null);
insert into public.consensus_runs (id, org_id, recommendation_id, status, triggers, evidence, reviewed_savings,
                                   reviewed_cost, rereview_change, rounds, score, verdict, description, confidence,
                                   adjusted_monthly_savings, savings_source, caveats, applied, finished_at)
select ('00000000-0000-4000-8000-0000000da2c' || n)::uuid, '00000000-0000-4000-8000-0000000da2a1',
       ('00000000-0000-4000-8000-0000000da2b' || n)::uuid, 'completed', array['enterprise_plan'], '{}', 400, 500, 0.2,
       1, 0.9, 'accept', 'Agreed.', 0.8, 380, 'analyst', '[]', true, now()
from generate_series(1, 2) n;
update public.recommendations set consensus_run_id = ('00000000-0000-4000-8000-0000000da2c' || right(id::text, 1))::uuid
 where org_id = '00000000-0000-4000-8000-0000000da2a1';

select tests.authenticate_as('rev_owner');
-- the owner applies a reviewed recommendation
select is(public.apply_recommendation('00000000-0000-4000-8000-0000000da2b1', 1) ->> 'status', 'applied',
          'an owner applies a recommendation a consensus review stands on');
select is((select confidence from public.recommendations where id = '00000000-0000-4000-8000-0000000da2b1'), 0.8,
          'the review''s confidence stays on it');
-- and dismisses another
select is(public.dismiss_recommendation('00000000-0000-4000-8000-0000000da2b2', 'not now') ->> 'status', 'dismissed',
          'an owner dismisses a reviewed recommendation');

select * from finish();
rollback;
