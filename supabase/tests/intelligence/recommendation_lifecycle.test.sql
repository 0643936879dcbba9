-- Recommendations: apply creates the suggested routing rule on a traffic share and freezes the baseline;
-- only members allowed to write recommendations may apply or dismiss; dismissing needs a reason.
begin;
select plan(8);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000a701', 'a'),
                                                   ('00000000-0000-0000-0000-00000000a702', 'b');
select tests.create_user(r) from unnest(array['rl_owner', 'rl_member', 'rl_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000a701', tests.uid('rl_owner'), 'owner'),
  ('00000000-0000-0000-0000-00000000a701', tests.uid('rl_member'), 'member'),
  ('00000000-0000-0000-0000-00000000a702', tests.uid('rl_other'), 'owner');
insert into public.recommendations (id, org_id, category, fingerprint, title, current_monthly_cost,
                                    estimated_monthly_savings, evidence, suggested_rule) values
  ('00000000-0000-0000-0000-00000000a7a1', '00000000-0000-0000-0000-00000000a701', 'task_aware_routing', 'fp-1',
   'Route classification', 100, 80, '{"cost_per_request": 0.01, "requests": 10000}',
   '{"conditions": {"feature": "classify"}, "action": {"type": "route_to_model", "model": "gpt-4o-mini"}}'),
  ('00000000-0000-0000-0000-00000000a7a2', '00000000-0000-0000-0000-00000000a701', 'error_reduction', 'fp-2',
   'Fix errors', 50, 10, '{}', null);

select tests.authenticate_as('rl_other');
-- another organization cannot apply it
select throws_ok($$ select public.apply_recommendation('00000000-0000-0000-0000-00000000a7a1') $$, 'P0002', null,
                 'an outsider cannot apply');
select tests.clear_authentication();

select tests.authenticate_as('rl_member');
-- a member reads recommendations, largest savings first, but cannot apply them
select results_eq($$ select jsonb_path_query(public.recommendation_list(), '$.data[*].category') #>> '{}' $$,
                  $$ values ('task_aware_routing'), ('error_reduction') $$, 'listed by savings');
select throws_ok($$ select public.apply_recommendation('00000000-0000-0000-0000-00000000a7a1') $$, 'P0002', null,
                 'a member cannot apply');
select tests.clear_authentication();

select tests.authenticate_as('rl_owner');
-- the owner applies it as an A/B test on 20% of the traffic
select is(public.apply_recommendation('00000000-0000-0000-0000-00000000a7a1', 0.2) #>> '{routing_rule,traffic_share}',
          '0.200', 'the routing rule takes 20% of the traffic');
select throws_ok($$ select public.apply_recommendation('00000000-0000-0000-0000-00000000a7a1') $$, 'P0002', null,
                 'an applied recommendation is not applied twice');
-- dismissing needs a reason
select throws_ok($$ select public.dismiss_recommendation('00000000-0000-0000-0000-00000000a7a2', ' ') $$, '22023',
                 null, 'a dismissal without a reason is refused');
select is(public.dismiss_recommendation('00000000-0000-0000-0000-00000000a7a2', 'expected') ->> 'status', 'dismissed',
          'the owner dismisses with a reason');
select tests.clear_authentication();

-- the baseline was frozen at apply time
select results_eq($$ select (baseline ->> 'cost_per_request')::numeric, status from public.recommendations
                      where id = '00000000-0000-0000-0000-00000000a7a1' $$,
                  $$ values (0.01::numeric, 'applied') $$, 'baseline recorded, status applied');

select * from finish();
rollback;
