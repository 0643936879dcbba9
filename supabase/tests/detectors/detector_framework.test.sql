-- The detector framework: every registered detector is a function of (uuid[], timestamptz) returning the
-- candidate type that only the service role runs; a missing parameter is an error naming it; the window
-- covers whole UTC days and scales by the days of history an organization has; everything is documented.
begin;
select plan(8);

-- every registered function exists with the contract's signature and result type
select is_empty($$
  select d.category from private.detectors d
   where to_regprocedure(d.function_name || '(uuid[], timestamptz)') is null
      or (select p.prorettype from pg_proc p where p.oid = to_regprocedure(d.function_name || '(uuid[], timestamptz)'))
         <> 'private.recommendation_candidate'::regtype
      or not (select p.proretset from pg_proc p where p.oid = to_regprocedure(d.function_name || '(uuid[], timestamptz)'))
$$, 'every registered detector returns setof private.recommendation_candidate for (uuid[], timestamptz)');
select is_empty($$
  select d.category from private.detectors d
   where has_function_privilege('authenticated', d.function_name || '(uuid[], timestamptz)', 'execute')
      or not has_function_privilege('service_role', d.function_name || '(uuid[], timestamptz)', 'execute')
$$, 'only the service role runs detectors');
-- parameters
select is(private.detector_param('semantic_caching', 'min_share'), 0.05, 'a parameter reads its value');
select throws_ok($$ select private.detector_param('semantic_caching', 'no_such_threshold') $$, 'P0002',
                 'detector parameter semantic_caching.no_such_threshold is not defined',
                 'a missing parameter is an error naming it');
-- the window: from UTC midnight 30 days back; a first call 3 days back at 11:00 makes 3.5 days of history
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-00000000000a', 'detect-window'),
                                                   ('d1000000-0000-0000-0000-00000000000b', 'detect-empty');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model)
values ('d1000000-0000-0000-0000-00000000000a', date_trunc('day', now()) - interval '3 days' + interval '11 hours',
        'window-1', 'openai', 'gpt-4o');
select results_eq(
  $$ select org_id::text, since, days::numeric(10, 4), monthly::numeric(10, 4)
       from private.detector_window(array['d1000000-0000-0000-0000-00000000000a',
                                          'd1000000-0000-0000-0000-00000000000b']::uuid[],
                                    date_trunc('day', now()) + interval '12 hours') order by 1 $$,
  $$ values ('d1000000-0000-0000-0000-00000000000a', date_trunc('day', now()) - interval '30 days', 3.5::numeric(10, 4),
             (30 / 3.5)::numeric(10, 4)),
            ('d1000000-0000-0000-0000-00000000000b', date_trunc('day', now()) - interval '30 days', 1::numeric(10, 4),
             30::numeric(10, 4)) $$,
  'history from the first day with usage, at least one day; monthly = 30 / days');
-- documented: every detector and parameter says what it is, every column of the framework's tables has a comment
select is_empty($$ select category from private.detectors where btrim(description) = ''
                   union all select category || '.' || name from private.detector_parameters where btrim(description) = '' $$,
                'every detector and parameter is described');
select is_empty($$
  select c.relname || '.' || a.attname from pg_class c
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
   where c.oid in ('private.detectors'::regclass, 'private.detector_parameters'::regclass,
                   'private.budget_tier_tasks'::regclass, 'private.provider_budget_models'::regclass,
                   'private.model_alternatives'::regclass, 'private.routable_providers'::regclass)
     and coalesce(btrim(col_description(c.oid, a.attnum)), '') = '' $$,
  'every column of the detector tables has a comment');
-- a detector runs for many organizations in one call, each finding tagged with its organization
select is_empty($$ select * from private.detect_semantic_caching(
                     array['d1000000-0000-0000-0000-00000000000a', 'd1000000-0000-0000-0000-00000000000b']::uuid[],
                     now()) $$, 'organizations without the pattern get nothing');

select finish();
rollback;
