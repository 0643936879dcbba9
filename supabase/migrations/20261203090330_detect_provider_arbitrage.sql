-- provider_arbitrage: the same model listed at a lower price by another provider we would route to
-- (private.routable_providers). Both sides are priced today for the scope's input, cached and output
-- tokens; the cheapest other provider (the first by name on a tie) is the target.
insert into private.detectors (category, function_name, description) values
  ('provider_arbitrage', 'private.detect_provider_arbitrage',
   'Features whose model another routable provider lists at most max_cost_share of the current provider''s price.');
insert into private.detector_parameters (category, name, value, description) values
  ('provider_arbitrage', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('provider_arbitrage', 'max_cost_share', 0.9,
   'The other provider must cost at most this share of the current one (0..1) for the same tokens.');

create function private.detect_provider_arbitrage(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('provider_arbitrage', 'min_monthly_savings') as min_savings,
           private.detector_param('provider_arbitrage', 'max_cost_share') as max_share
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), scopes as (
    select s.* from private.detector_scopes(p_orgs, (select min(w.since) from w)) s where s.cost > 0
  ), hosts as materialized (
    -- which routable providers list each model of the chunk
    select distinct m.model_id, m.provider_id
      from private.model_prices m
      join private.routable_providers h on h.provider_id = m.provider_id
     where m.model_id in (select s.model from scopes s)
  ), priced as (
    select s.org_id, s.feature, s.provider, s.model, s.requests, s.input_tokens, s.output_tokens, s.series,
           here.cost_usd as here, best.provider_id as target, best.cost_usd as there
      from scopes s
     cross join lateral (
       select o.provider_id, c.cost_usd
         from hosts o
        cross join lateral private.usage_cost(o.provider_id, s.model, p_now, s.input_tokens, s.output_tokens,
                                              s.cached_tokens, 0, 0) c
        where o.model_id = s.model and o.provider_id <> s.provider
        order by c.cost_usd, o.provider_id
        limit 1
     ) best
     cross join lateral private.usage_cost(s.provider, s.model, p_now, s.input_tokens, s.output_tokens,
                                           s.cached_tokens, 0, 0) here
     where here.cost_usd > 0
  )
  select x.org_id, 'provider_arbitrage', 'feature', x.feature, x.model || ':' || x.target,
         format('Call %s for feature %s through %s instead of %s', x.model, x.feature, x.target, x.provider),
         format('%s calls of feature `%s` in %s days ran %s on %s; %s lists the same model at %s of the price.',
                private.fmt_count(x.requests), x.feature, round(w.days), x.model, x.provider, x.target,
                private.fmt_share(m.projected / m.current)),
         m.current, m.projected,
         'the same input, cached and output tokens priced at both providers'' listed prices today (pricing table)',
         0.7, 'medium', 'medium',
         jsonb_build_array(
           format('Create a %s account or deployment for %s and check its limits, region and data terms.',
                  x.target, x.model),
           format('Route feature %s to %s (apply creates the rule), on a traffic share first.', x.feature, x.target)),
         jsonb_build_object('requests', x.requests, 'cost_per_request', x.here / greatest(x.requests, 1),
                            'model', x.model, 'provider', x.provider, 'target_provider', x.target,
                            'input_tokens', x.input_tokens, 'output_tokens', x.output_tokens, 'series', x.series,
                            'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', x.feature, 'model', x.model,
                                                             'provider', x.provider),
                            'action', jsonb_build_object('type', 'route_to_model', 'provider', x.target,
                                                         'model', x.model))
    from priced x
    join w on w.org_id = x.org_id
   cross join p
   cross join lateral (select x.here * w.monthly as current, x.there * w.monthly as projected) m
   where m.current - m.projected >= p.min_savings and m.projected <= p.max_share * m.current
$$;
comment on function private.detect_provider_arbitrage(uuid[], timestamptz) is
  'Recommendations to call the same model through a cheaper routable provider.';
revoke all on function private.detect_provider_arbitrage(uuid[], timestamptz) from public;
grant execute on function private.detect_provider_arbitrage(uuid[], timestamptz) to service_role;
