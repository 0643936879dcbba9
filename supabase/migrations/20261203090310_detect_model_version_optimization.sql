-- model_version_optimization: a feature on a text model the registry marks superseded (its family's
-- successor, private.model_successor) whose successor costs less for the same tokens. Savings: the
-- scope's input, cached and output tokens repriced at the successor's listed price, scaled to a month.
insert into private.detectors (category, function_name, description) values
  ('model_version_optimization', 'private.detect_model_version_optimization',
   'Features on a superseded text model whose registry successor costs less for the same tokens.');
insert into private.detector_parameters (category, name, value, description) values
  ('model_version_optimization', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.');

create function private.detect_model_version_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('model_version_optimization', 'min_monthly_savings') as min_savings
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), scopes as (
    select s.* from private.detector_scopes(p_orgs, (select min(w.since) from w)) s
  ), targets as materialized (
    -- the registry lookup once per (provider, model) of the chunk, not once per scope
    select x.provider, x.model, private.model_successor(x.provider, x.model) as target
      from (select distinct s.provider, s.model from scopes s) x
     where private.model_kind(x.model) = 'text'
  )
  select s.org_id, 'model_version_optimization', 'feature', s.feature, s.model,
         format('Move feature %s from superseded %s to %s', s.feature, s.model, t.target),
         format('%s is superseded by %s, which costs %s as much for the same tokens.', s.model, t.target,
                private.fmt_share(m.projected / m.current)),
         m.current, m.projected,
         'the same tokens repriced at the successor''s listed price (pricing table)',
         0.85, 'low', 'low',
         jsonb_build_array(format('Change the model of feature %s from %s to %s.', s.feature, s.model, t.target),
                           'Run the feature''s evaluations.'),
         jsonb_build_object('requests', s.requests, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', s.model, 'provider', s.provider, 'target_model', t.target,
                            'series', s.series, 'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', s.feature, 'model', s.model),
                            'action', jsonb_build_object('type', 'route_to_model', 'provider', s.provider,
                                                         'model', t.target))
    from scopes s
    join targets t on t.provider = s.provider and t.model = s.model and t.target is not null
    join w on w.org_id = s.org_id
   cross join p
   cross join lateral (
     select s.cost * w.monthly as current, c.cost_usd * w.monthly as projected
       from private.usage_cost(s.provider, t.target, p_now, s.input_tokens, s.output_tokens, s.cached_tokens, 0, 0) c
   ) m
   where m.current - m.projected >= p.min_savings
$$;
comment on function private.detect_model_version_optimization(uuid[], timestamptz) is
  'Recommendations to move features off superseded text models to their cheaper registry successor.';
revoke all on function private.detect_model_version_optimization(uuid[], timestamptz) from public;
grant execute on function private.detect_model_version_optimization(uuid[], timestamptz) to service_role;
