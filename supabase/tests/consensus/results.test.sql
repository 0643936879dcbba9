-- A finished run: stored with its rounds, positions and calls in one go, totals summed from the calls,
-- applied to the recommendation (confidence, caveats; reject holds it back), kept standing while the
-- figures stay, withdrawn when they move; failed runs change nothing; members read it, others get 404.
begin;
select plan(16);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000cd001', 'a'),
                                                   ('00000000-0000-0000-0000-0000000cd002', 'b');
select tests.create_user(r) from unnest(array['cr_member', 'cr_viewer', 'cr_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-0000000cd001', tests.uid('cr_member'), 'member'),
  ('00000000-0000-0000-0000-0000000cd001', tests.uid('cr_viewer'), 'viewer'),
  ('00000000-0000-0000-0000-0000000cd002', tests.uid('cr_other'), 'owner');
insert into public.recommendations (id, org_id, category, scope_type, scope_value, fingerprint, title,
                                    current_monthly_cost, estimated_monthly_savings, confidence) values
  ('00000000-0000-0000-0000-0000000cdb01', '00000000-0000-0000-0000-0000000cd001', 'task_aware_routing', 'feature',
   'chat', 'fp-1', 'route chat', 3000, 1200, 0.8),
  ('00000000-0000-0000-0000-0000000cdb02', '00000000-0000-0000-0000-0000000cd001', 'error_reduction', 'feature',
   'chat', 'fp-2', 'fix errors', 3000, 1500, 0.8);

-- A run with one round of three positions, four calls (one failed attempt) and a synthesis.
create function pg_temp.result(verdict text) returns jsonb language sql as $$
  select jsonb_build_object(
    'status', 'completed',
    'rounds', jsonb_build_array(jsonb_build_object('round', 1, 'score', 0.85, 'verdict_agreement', 1,
      'savings_agreement', 0.7, 'key_point_overlap', 0.5, 'positions', (
        select jsonb_agg(jsonb_build_object('role', r, 'provider', 'openai', 'model', 'gpt-4.1-mini',
                                            'request_id', 'q-' || r, 'verdict', verdict,
                                            'adjusted_monthly_savings', s, 'confidence', 0.7,
                                            'key_points', '[]'::jsonb, 'risks', '[]'::jsonb))
        from (values ('analyst', 1000), ('skeptic', 700), ('advocate', 900)) v(r, s)))),
    'calls', (select jsonb_agg(jsonb_build_object('seq', n, 'round', case when n < 5 then 1 end,
                                                  'task', 'consensus.' || t, 'provider', 'openai',
                                                  'model', 'gpt-4.1-mini', 'request_id', 'q' || n,
                                                  'input_tokens', 1000, 'output_tokens', 100,
                                                  'cached_tokens', 0, 'cost_usd', 0.002, 'latency_ms', 10,
                                                  'fallback_used', n = 2, 'ok', n <> 1, 'error', null))
              from (values (1, 'skeptic'), (2, 'skeptic'), (3, 'analyst'), (4, 'advocate'),
                           (5, 'synthesizer')) c(n, t)),
    'synthesis', jsonb_build_object('verdict', verdict, 'description', 'Route chat to the small model.',
                                    'confidence', 0.65, 'savings_source', 'skeptic',
                                    'caveats', jsonb_build_array('check quality first'),
                                    'dissent', '[]'::jsonb))
$$;

select private.finish_consensus_run(
  private.start_consensus_run('00000000-0000-0000-0000-0000000cdb01', '{high_savings}', '{}', 0.2),
  pg_temp.result('modify'));
-- everything stored, totals from the calls, final savings from the adopted agent
select results_eq($$ select status, rounds, calls, input_tokens, output_tokens, cost_usd, adjusted_monthly_savings,
                           applied from public.consensus_runs
                    where recommendation_id = '00000000-0000-0000-0000-0000000cdb01' $$,
                  $$ values ('completed', 1, 5, 5000::bigint, 500::bigint, 0.010::numeric, 700::numeric, true) $$,
                  'run stored with totals from its calls and the skeptic''s savings adopted');
select is((select count(*)::int from public.consensus_positions p join public.consensus_runs x on x.id = p.run_id
           where x.recommendation_id = '00000000-0000-0000-0000-0000000cdb01'), 3, 'three positions stored');
-- applied: confidence and caveats from the synthesis, the detector's confidence kept aside, still open
select results_eq($$ select status, confidence, detector_confidence, caveats from public.recommendations
                    where id = '00000000-0000-0000-0000-0000000cdb01' $$,
                  $$ values ('open', 0.65::numeric, 0.8::numeric, '["check quality first"]'::jsonb) $$,
                  'confidence and caveats updated');

-- the detectors rewrite the recommendation each hour: within 20% the review stands
update public.recommendations set confidence = 0.8, estimated_monthly_savings = 1300, last_seen_at = now() + interval '1 hour'
 where id = '00000000-0000-0000-0000-0000000cdb01';
select results_eq($$ select confidence, caveats, consensus_run_id is not null from public.recommendations
                    where id = '00000000-0000-0000-0000-0000000cdb01' $$,
                  $$ values (0.65::numeric, '["check quality first"]'::jsonb, true) $$,
                  'a detector''s rewrite within tolerance keeps the review');
-- beyond 20% the review stops standing and the detector's confidence returns
update public.recommendations set confidence = 0.75, estimated_monthly_savings = 2000,
                                  last_seen_at = now() + interval '2 hours'
 where id = '00000000-0000-0000-0000-0000000cdb01';
select results_eq($$ select confidence, caveats, consensus_run_id from public.recommendations
                    where id = '00000000-0000-0000-0000-0000000cdb01' $$,
                  $$ values (0.75::numeric, '[]'::jsonb, null::uuid) $$,
                  'figures that moved withdraw the review');
select is((select count(*)::int from private.consensus_candidates(1000, 0.7, 10, 0.1, interval '24 hours', 100,
                                                               '00000000-0000-0000-0000-0000000cd001')
           where recommendation_id = '00000000-0000-0000-0000-0000000cdb01'), 1, 'and it is a candidate again');

-- a reject holds the recommendation back
select private.finish_consensus_run(
  private.start_consensus_run('00000000-0000-0000-0000-0000000cdb02', '{high_savings}', '{}', 0.2),
  pg_temp.result('reject'));
select is((select status from public.recommendations where id = '00000000-0000-0000-0000-0000000cdb02'),
          'under_review', 'reject: held for review');
-- expiring and coming back does not release it
update public.recommendations set status = 'expired' where id = '00000000-0000-0000-0000-0000000cdb02';
update public.recommendations set status = 'open', confidence = 0.8, last_seen_at = now() + interval '1 hour'
 where id = '00000000-0000-0000-0000-0000000cdb02';
select is((select status from public.recommendations where id = '00000000-0000-0000-0000-0000000cdb02'),
          'under_review', 'a rejected recommendation that comes back stays held');
-- once its figures move, a new review that accepts releases it
update public.recommendations set estimated_monthly_savings = 600 where id = '00000000-0000-0000-0000-0000000cdb02';
select private.finish_consensus_run(
  private.start_consensus_run('00000000-0000-0000-0000-0000000cdb02', '{high_savings}', '{}', 0.2),
  pg_temp.result('accept'));
select is((select status from public.recommendations where id = '00000000-0000-0000-0000-0000000cdb02'),
          'open', 'a later accept releases the hold');

-- a failed run stores its calls and changes nothing on the recommendation
update public.recommendations set estimated_monthly_savings = 1000 where id = '00000000-0000-0000-0000-0000000cdb02';
select private.finish_consensus_run(
  private.start_consensus_run('00000000-0000-0000-0000-0000000cdb02', '{high_savings}', '{}', 0.2),
  jsonb_build_object('status', 'failed', 'stop_reason', 'StructuredOutputFailed: malformed twice',
                     'calls', pg_temp.result('accept') -> 'calls'));
select results_eq($$ select status, confidence, consensus_run_id is null from public.recommendations
                    where id = '00000000-0000-0000-0000-0000000cdb02' $$,
                  $$ values ('open', 0.8::numeric, true) $$, 'a failed run leaves the recommendation as it was');
select results_eq($$ select status, calls, applied, stop_reason from public.consensus_runs
                    where recommendation_id = '00000000-0000-0000-0000-0000000cdb02' order by started_at desc, status
                    limit 1 $$,
                  $$ values ('failed', 5, false, 'StructuredOutputFailed: malformed twice') $$,
                  'the failed run is recorded with its calls and reason');
-- finishing twice is refused
select throws_ok($$ select private.finish_consensus_run(id, '{"status": "failed", "stop_reason": "again"}')
                    from public.consensus_runs where status = 'failed' limit 1 $$, 'P0002', null,
                 'a finished run cannot be finished again');

-- reading: a member sees the record, a viewer and another organization get not-found
select tests.authenticate_as('cr_member');
select is(jsonb_array_length(public.recommendation_consensus('00000000-0000-0000-0000-0000000cdb02') -> 'runs'), 3,
          'a member reads every run, newest first');
select tests.clear_authentication();
select tests.authenticate_as('cr_viewer');
select throws_ok($$ select public.recommendation_consensus('00000000-0000-0000-0000-0000000cdb01') $$, 'P0002', null,
                 'a viewer may not read recommendations');
select tests.clear_authentication();
select tests.authenticate_as('cr_other');
select throws_ok($$ select public.recommendation_consensus('00000000-0000-0000-0000-0000000cdb01') $$, 'P0002', null,
                 'another organization gets not-found');
select tests.clear_authentication();
-- a recommendation never reviewed is not-found too
insert into public.recommendations (id, org_id, category, fingerprint, title)
values ('00000000-0000-0000-0000-0000000cdb03', '00000000-0000-0000-0000-0000000cd001', 'x', 'fp-3', 'unreviewed');
select throws_ok($$ select public.recommendation_consensus('00000000-0000-0000-0000-0000000cdb03') $$, 'P0002', null,
                 'never reviewed: not found');

select * from finish();
rollback;
