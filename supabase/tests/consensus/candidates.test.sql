-- Which recommendations the consensus job reviews: each trigger alone suffices, the
-- floor and the standing review exclude, a running or recently failed run excludes, figures that moved
-- make a recommendation a candidate again.
begin;
select plan(14);

insert into public.organizations (id, name, plan) values ('00000000-0000-0000-0000-0000000cc001', 'free org', 'free'),
                                                         ('00000000-0000-0000-0000-0000000cc002', 'big org', 'enterprise');
insert into public.teams (org_id, name, tags) values ('00000000-0000-0000-0000-0000000cc001', 'payments', '{production}');
-- savings, confidence and scope chosen so that exactly one trigger fires for each
insert into public.recommendations (id, org_id, category, scope_type, scope_value, fingerprint, title,
                                    current_monthly_cost, estimated_monthly_savings, confidence, evidence,
                                    suggested_rule) values
  ('00000000-0000-0000-0000-0000000cca01', '00000000-0000-0000-0000-0000000cc001', 'task_aware_routing', 'feature',
   'big', 'fp-savings', 'high savings', 5000, 1500, 0.9, '{"model": "gpt-4o"}', null),
  ('00000000-0000-0000-0000-0000000cca02', '00000000-0000-0000-0000-0000000cc001', 'error_reduction', 'feature',
   'shaky', 'fp-confidence', 'low confidence', 500, 100, 0.5, '{}', null),
  ('00000000-0000-0000-0000-0000000cca03', '00000000-0000-0000-0000-0000000cc001', 'error_reduction', 'team',
   'payments', 'fp-production', 'production team', 500, 100, 0.9, '{}', null),
  ('00000000-0000-0000-0000-0000000cca04', '00000000-0000-0000-0000-0000000cc001', 'task_aware_routing', 'feature',
   'chat', 'fp-rival-1', 'route chat to mini', 500, 100, 0.9, '{"model": "gpt-4o"}',
   '{"action": {"type": "route_to_model", "model": "gpt-4o-mini"}}'),
  ('00000000-0000-0000-0000-0000000cca05', '00000000-0000-0000-0000-0000000cc001', 'provider_arbitrage', 'feature',
   'chat', 'fp-rival-2', 'route chat to haiku', 500, 100, 0.9, '{"model": "gpt-4o"}',
   '{"action": {"type": "route_to_model", "model": "claude-3-5-haiku-latest"}}'),
  ('00000000-0000-0000-0000-0000000cca06', '00000000-0000-0000-0000-0000000cc001', 'error_reduction', 'feature',
   'quiet', 'fp-nothing', 'nothing fires', 500, 100, 0.9, '{}', null),
  ('00000000-0000-0000-0000-0000000cca07', '00000000-0000-0000-0000-0000000cc001', 'error_reduction', 'feature',
   'tiny', 'fp-floor', 'under the floor', 50, 5, 0.1, '{}', null),
  ('00000000-0000-0000-0000-0000000cca08', '00000000-0000-0000-0000-0000000cc002', 'error_reduction', 'feature',
   'any', 'fp-enterprise', 'enterprise', 500, 100, 0.9, '{}', null),
  ('00000000-0000-0000-0000-0000000cca09', '00000000-0000-0000-0000-0000000cc001', 'error_reduction', 'feature',
   'tagged', 'fp-tagged', 'evidence tagged', 500, 100, 0.9, '{"tags": ["production"]}', null);
-- a cost anomaly on a scope of its own
insert into public.recommendations (id, org_id, category, scope_type, scope_value, fingerprint, title,
                                    current_monthly_cost, estimated_monthly_savings, confidence)
values ('00000000-0000-0000-0000-0000000cca10', '00000000-0000-0000-0000-0000000cc001', 'error_reduction', 'feature',
        'spiky', 'fp-anomaly', 'anomalous scope', 500, 100, 0.9);
insert into public.anomalies (org_id, metric, dimension, dimension_value, severity, window_start, expected_value,
                              actual_value)
values ('00000000-0000-0000-0000-0000000cc001', 'cost', 'feature', 'spiky', 'high', now() - interval '2 hours', 1, 9);

create function pg_temp.candidates() returns table (title text, triggers text[])
language sql as $$
  select r.title, c.triggers
  from private.consensus_candidates(1000, 0.7, 10, 0.1, interval '24 hours', 100) c
  join public.recommendations r on r.id = c.recommendation_id
  where c.org_id in ('00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc002')
$$;

-- savings over the threshold
select is((select triggers from pg_temp.candidates() where title = 'high savings'), '{high_savings}', 'high savings');
-- detector confidence under 0.7
select is((select triggers from pg_temp.candidates() where title = 'low confidence'), '{low_confidence}',
          'low confidence');
-- a team tagged production, and a recommendation whose evidence carries the tag
select is((select triggers from pg_temp.candidates() where title = 'production team'), '{production_scope}',
          'team tagged production');
select is((select triggers from pg_temp.candidates() where title = 'evidence tagged'), '{production_scope}',
          'evidence tagged production');
-- two detectors propose different target models for the same scope and source model: both conflict
select is((select count(*)::int from pg_temp.candidates() where triggers = '{conflicting_signals}'
           and title like 'route chat%'), 2, 'rival recommendations are conflicting signals');
-- an open cost anomaly on the scope
select is((select triggers from pg_temp.candidates() where title = 'anomalous scope'), '{conflicting_signals}',
          'an open cost anomaly is a conflicting signal');
-- enterprise plan
select is((select triggers from pg_temp.candidates() where title = 'enterprise'), '{enterprise_plan}',
          'enterprise organization');
-- nothing fires, or under the floor whatever fires: not a candidate
select is((select count(*)::int from pg_temp.candidates() where title in ('nothing fires', 'under the floor')), 0,
          'no trigger, or under the floor: not reviewed');

-- a running review excludes; a second claim gets nothing
select isnt(private.start_consensus_run('00000000-0000-0000-0000-0000000cca01', '{high_savings}', '{}', 0.2), null,
            'a run is claimed');
select is(private.start_consensus_run('00000000-0000-0000-0000-0000000cca01', '{high_savings}', '{}', 0.2), null,
          'a second run of the same recommendation is refused while the first runs');
-- a run left running by a dead worker is failed after the timeout, so the recommendation comes back
update public.consensus_runs set started_at = now() - interval '1 hour'
 where recommendation_id = '00000000-0000-0000-0000-0000000cca01';
select is(private.expire_consensus_runs(interval '15 minutes'), 1, 'an abandoned run is expired');
select is((select stop_reason from public.consensus_runs
           where recommendation_id = '00000000-0000-0000-0000-0000000cca01'),
          'abandoned: the worker stopped before finishing the run', 'and says why');
-- a failed run excludes for the retry window
update public.consensus_runs set started_at = now() where recommendation_id = '00000000-0000-0000-0000-0000000cca01';
select is((select count(*)::int from pg_temp.candidates() where title = 'high savings'), 0,
          'failed within the retry window: not retried yet');

-- the cost trend: cost up 50% while requests fell 50% over the last 7 complete days
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, feature, input_tokens,
                                  output_tokens, cost_usd, priced)
select '00000000-0000-0000-0000-0000000cc001', date_trunc('day', now()) - (d || ' days')::interval + interval '1 hour',
       'trend-' || d || '-' || i, 'openai', 'gpt-4o', 'quiet', 100, 10, case when d <= 7 then 0.3 else 0.1 end, true
from generate_series(1, 14) d, generate_series(1, case when d <= 7 then 5 else 10 end) i;
select is((select triggers from pg_temp.candidates() where title = 'nothing fires'), '{conflicting_signals}',
          'cost up while requests fall is a conflicting signal');

select * from finish();
rollback;
