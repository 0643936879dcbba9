-- embedding_optimization: a feature on an embedding model with a cheaper model of comparable retrieval
-- quality (private.model_alternatives, else the registry successor of an embedding model). Savings: the
-- same tokens repriced at the alternative's listed price, scaled to a month.
insert into private.detectors (category, function_name, description) values
  ('embedding_optimization', 'private.detect_embedding_optimization',
   'Features on an embedding model with a cheaper alternative or successor of comparable retrieval quality.');
insert into private.detector_parameters (category, name, value, description) values
  ('embedding_optimization', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.');

create function private.detect_embedding_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('embedding_optimization', 'min_monthly_savings') as min_savings
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), scopes as (
    select s.* from private.detector_scopes(p_orgs, (select min(w.since) from w)) s
  ), targets as materialized (
    select x.provider, x.model,
           coalesce((select a.alternative from private.model_alternatives a
                      where a.model = x.model and a.kind = 'embedding'),
                    private.model_successor(x.provider, x.model)) as target
      from (select distinct s.provider, s.model from scopes s) x
     where private.model_kind(x.model) = 'embedding'
  )
  select s.org_id, 'embedding_optimization', 'feature', s.feature, s.model,
         format('Embed feature %s with %s instead of %s', s.feature, t.target, s.model),
         format('%s embedding calls on %s; %s costs %s as much per token. Re-embed the corpus once when switching '
                '(vectors are not comparable).', private.fmt_count(s.requests), s.model, t.target,
                private.fmt_share(m.projected / m.current)),
         m.current, m.projected,
         'the same input tokens repriced at the target model''s listed price (pricing table)',
         0.75, 'medium', 'medium',
         jsonb_build_array(format('Re-embed the stored corpus with %s (or at reduced dimensions).', t.target),
                           format('Switch feature %s''s queries to %s at the same time.', s.feature, t.target),
                           'Compare retrieval recall on a labelled sample before and after.'),
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
comment on function private.detect_embedding_optimization(uuid[], timestamptz) is
  'Recommendations to embed with a cheaper model of comparable retrieval quality.';
revoke all on function private.detect_embedding_optimization(uuid[], timestamptz) from public;
grant execute on function private.detect_embedding_optimization(uuid[], timestamptz) to service_role;
