-- The recommendations job's SQL side: the chunk's scope sums remembered once read the same as computed,
-- serve only the organizations and window they hold, and are gone once forgotten; a chunk's findings are
-- written in one call with the lifecycle of one upsert each (fingerprint, priority, reopening an expired
-- recommendation, leaving a dismissed one alone, expiring what was not found again).
begin;
select plan(12);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000e0101', 'memo-a'),
                                                   ('00000000-0000-0000-0000-0000000e0102', 'memo-b'),
                                                   ('00000000-0000-0000-0000-0000000e0103', 'memo-c');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  status, feature, cost_usd, priced)
select o, now() - (i % 9) * interval '1 day' - interval '1 hour', o::text || '-' || i, 'openai', 'gpt-4o', 100 + i, 10,
       case when i % 7 = 0 then 'error' else 'success' end, 'f' || (i % 3), 0.01 * i, true
  from unnest(array['00000000-0000-0000-0000-0000000e0101', '00000000-0000-0000-0000-0000000e0102']::uuid[]) o,
       generate_series(1, 40) i;

create temporary table computed on commit drop as
select s.* from private.detector_window('{00000000-0000-0000-0000-0000000e0101,00000000-0000-0000-0000-0000000e0102}',
                                        now()) w
 cross join lateral private.detector_scopes(array[w.org_id], w.since) s;
select is((select count(*) from computed)::integer, 6, 'three features on one model for each of two organizations');
select is(private.detector_scopes_remember('{00000000-0000-0000-0000-0000000e0101,00000000-0000-0000-0000-0000000e0102}',
                                           now()), 6, 'remembering returns the scopes it holds');
-- usage written after remembering is not seen by a remembered read: proof the read comes from the memo
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, feature, cost_usd, priced)
values ('00000000-0000-0000-0000-0000000e0101', now() - interval '2 hours', 'late', 'openai', 'gpt-4o', 'success',
        'late-feature', 1, true),
       ('00000000-0000-0000-0000-0000000e0103', now() - interval '2 hours', 'other', 'openai', 'gpt-4o', 'success',
        'other-feature', 1, true);
select set_eq($$ select s.* from private.detector_window('{00000000-0000-0000-0000-0000000e0101}', now()) w
                  cross join lateral private.detector_scopes('{00000000-0000-0000-0000-0000000e0101}', w.since) s $$,
              $$ select * from computed where org_id = '00000000-0000-0000-0000-0000000e0101' $$,
              'a remembered organization reads its remembered sums, as computed');
select is((select array_agg(distinct s.feature)
             from private.detector_window('{00000000-0000-0000-0000-0000000e0103}', now()) w
            cross join lateral private.detector_scopes('{00000000-0000-0000-0000-0000000e0103}', w.since) s),
          '{other-feature}', 'an organization not remembered is computed');
select is((select count(*) from private.detector_scopes('{00000000-0000-0000-0000-0000000e0101}',
                                                         now() - interval '3 days'))::integer, 4,
          'another window start is computed (the late feature included)');
select private.detector_scopes_forget();
select is((select count(*) from private.detector_window('{00000000-0000-0000-0000-0000000e0101}', now()) w
            cross join lateral private.detector_scopes('{00000000-0000-0000-0000-0000000e0101}', w.since) s)::integer,
          4, 'forgotten: computed again, the late feature included');

-- writing findings
create function pg_temp.finding(org text, scope text, cur numeric, proj numeric, title text) returns jsonb
language sql as $$
  select jsonb_build_object('org_id', org, 'category', 'error_reduction', 'scope_type', 'feature', 'scope_value', scope,
                            'key', 'gpt-4o', 'title', title, 'description', 'd', 'current_monthly_cost', cur,
                            'projected_monthly_cost', proj, 'savings_method', 'm', 'confidence', 0.7, 'risk', 'low',
                            'effort', 'low', 'implementation_steps', '["step"]'::jsonb,
                            'evidence', '{"requests": 3}'::jsonb, 'suggested_rule', '{}'::jsonb)
$$;
select results_eq(
  $$ select org_id::text, found, written, expired from private.record_recommendations(
       '{00000000-0000-0000-0000-0000000e0101,00000000-0000-0000-0000-0000000e0102}',
       jsonb_build_array(pg_temp.finding('00000000-0000-0000-0000-0000000e0101', 'f0', 1500, 100, 'first'),
                         pg_temp.finding('00000000-0000-0000-0000-0000000e0101', 'f0', 1500, 400, 'found twice'),
                         pg_temp.finding('00000000-0000-0000-0000-0000000e0101', 'f1', 30, 5, 'medium'),
                         pg_temp.finding('00000000-0000-0000-0000-0000000e0102', 'f2', 10, 9.5, 'low')),
       '{"00000000-0000-0000-0000-0000000e0101": 12.345}') order by 1 $$,
  $$ values ('00000000-0000-0000-0000-0000000e0101', 3, 2, 0), ('00000000-0000-0000-0000-0000000e0102', 1, 1, 0) $$,
  'findings, recommendations written (a fingerprint found twice once) and expired per organization');
select results_eq(
  $$ select fingerprint, title, estimated_monthly_savings, priority, evidence, suggested_rule is null
       from public.recommendations where org_id in ('00000000-0000-0000-0000-0000000e0101',
                                                    '00000000-0000-0000-0000-0000000e0102') order by 1 $$,
  $$ values ('error_reduction:feature=f0:gpt-4o', 'found twice', 1100.0000::numeric(14, 4), 'critical',
             '{"requests": 3, "scope": {"feature": "f0"}, "window_days": 12.35}'::jsonb, true),
            ('error_reduction:feature=f1:gpt-4o', 'medium', 25.0000::numeric(14, 4), 'medium',
             '{"requests": 3, "scope": {"feature": "f1"}, "window_days": 12.35}'::jsonb, true),
            ('error_reduction:feature=f2:gpt-4o', 'low', 0.5000::numeric(14, 4), 'low',
             '{"requests": 3, "scope": {"feature": "f2"}, "window_days": 1}'::jsonb, true) $$,
  'fingerprint, the last of a twice-found finding, savings, priority, evidence with scope and window days');

update public.recommendations set status = 'dismissed', dismiss_reason = 'no'
 where fingerprint = 'error_reduction:feature=f1:gpt-4o';
update public.recommendations set status = 'expired' where fingerprint = 'error_reduction:feature=f2:gpt-4o';
select results_eq(
  $$ select org_id::text, found, written, expired from private.record_recommendations(
       '{00000000-0000-0000-0000-0000000e0101,00000000-0000-0000-0000-0000000e0102}',
       jsonb_build_array(pg_temp.finding('00000000-0000-0000-0000-0000000e0101', 'f1', 30, 5, 'medium again'),
                         pg_temp.finding('00000000-0000-0000-0000-0000000e0102', 'f2', 10, 9, 'low again')),
       '{}') order by 1 $$,
  $$ values ('00000000-0000-0000-0000-0000000e0101', 1, 0, 1), ('00000000-0000-0000-0000-0000000e0102', 1, 1, 0) $$,
  'a dismissed finding is not written; one not found again expires');
select results_eq(
  $$ select fingerprint, status, title from public.recommendations
      where org_id in ('00000000-0000-0000-0000-0000000e0101', '00000000-0000-0000-0000-0000000e0102') order by 1 $$,
  $$ values ('error_reduction:feature=f0:gpt-4o', 'expired', 'found twice'),
            ('error_reduction:feature=f1:gpt-4o', 'dismissed', 'medium'),
            ('error_reduction:feature=f2:gpt-4o', 'open', 'low again') $$,
  'expired when not found, dismissed left alone, an expired one found again reopens');
select is((select count(*) from private.record_recommendations('{00000000-0000-0000-0000-0000000e0103}',
             jsonb_build_array(pg_temp.finding('00000000-0000-0000-0000-0000000e0101', 'f9', 10, 1, 'elsewhere')),
             '{}') where written > 0)::integer, 0, 'a finding of an organization not in the call is not written');
select ok(not has_function_privilege('authenticated', 'private.record_recommendations(uuid[], jsonb, jsonb)', 'execute')
          and has_function_privilege('service_role', 'private.detector_scopes_remember(uuid[], timestamptz)', 'execute'),
          'only the service role writes findings and remembers scopes');

select finish();
rollback;
