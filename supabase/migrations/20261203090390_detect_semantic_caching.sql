-- semantic_caching: a prompt (prompt_hash) already answered earlier by the same provider and model, sent
-- again after the deduplication window without a cache hit. Exact repeats are a lower bound of what a
-- semantic cache would answer. Savings: the cost of those repeats, scaled to a month.
insert into private.detectors (category, function_name, description) values
  ('semantic_caching', 'private.detect_semantic_caching',
   'Features where at least min_share of hashed calls repeat a prompt answered earlier, without a cache hit.');
insert into private.detector_parameters (category, name, value, description) values
  ('semantic_caching', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('semantic_caching', 'dedup_seconds', 60,
   'Repeats within this many seconds are left to request_deduplication; later ones count here.'),
  ('semantic_caching', 'min_share', 0.05, 'Share (0..1) of the scope''s hashed calls that must be repeats.'),
  ('semantic_caching', 'similarity_threshold', 0.95, 'Similarity the suggested cache rule starts from (0..1).');

create function private.detect_semantic_caching(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('semantic_caching', 'min_monthly_savings') as min_savings,
           private.detector_param('semantic_caching', 'dedup_seconds') as dedup,
           private.detector_param('semantic_caching', 'min_share') as min_share,
           private.detector_param('semantic_caching', 'similarity_threshold') as similarity
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), repeats as (
    select x.org_id, x.feature, x.provider, x.model,
           count(*) filter (where x.gap >= p.dedup and not x.cache_hit) as repeat_requests,
           coalesce(sum(x.cost) filter (where x.gap >= p.dedup and not x.cache_hit), 0) as repeat_cost,
           count(*) as hashed_requests,
           (array_agg(x.request_id) filter (where x.gap is not null))[1:5] as samples
      from (
        select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
               r.request_id, r.cache_hit, coalesce(r.cost_usd, 0) as cost,
               extract(epoch from r.occurred_at - lag(r.occurred_at) over (
                 partition by r.org_id, r.prompt_hash, r.provider, r.canonical_model order by r.occurred_at)) as gap
          from public.usage_records r
         where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.prompt_hash is not null
      ) x cross join p
     group by 1, 2, 3, 4
  )
  select d.org_id, 'semantic_caching', 'feature', d.feature, d.model,
         format('Cache responses of feature %s on %s', d.feature, d.model),
         format('%s calls asked a prompt already answered earlier, without a cache hit.',
                private.fmt_count(d.repeat_requests)),
         coalesce(s.cost, 0) * w.monthly, coalesce(s.cost, 0) * w.monthly - d.repeat_cost * w.monthly,
         'cost of exact repeats answered again (a lower bound: semantic matches add to it), per month',
         0.75, 'medium', 'medium',
         jsonb_build_array('Enable the semantic cache for this feature (apply creates the rule).',
                           'Pick a similarity threshold on a sample before enabling it for all traffic.'),
         jsonb_build_object('requests', d.repeat_requests,
                            'cost_per_request', d.repeat_cost / greatest(d.repeat_requests, 1),
                            'model', d.model, 'provider', d.provider, 'series', coalesce(s.series, '{}'::jsonb),
                            'sample_request_ids', to_jsonb(coalesce(d.samples, '{}'))),
         jsonb_build_object('conditions', jsonb_build_object('feature', d.feature, 'model', d.model),
                            'action', jsonb_build_object('type', 'enable_cache', 'similarity_threshold', p.similarity))
    from repeats d
    join w on w.org_id = d.org_id
   cross join p
    left join lateral (select s.cost, s.series from private.detector_scopes(array[d.org_id], w.since) s
                        where s.feature = d.feature and s.provider = d.provider and s.model = d.model) s on true
   where d.repeat_requests >= p.min_share * d.hashed_requests and d.repeat_cost * w.monthly >= p.min_savings
$$;
comment on function private.detect_semantic_caching(uuid[], timestamptz) is
  'Recommendations to cache responses of features that repeat prompts answered earlier.';
revoke all on function private.detect_semantic_caching(uuid[], timestamptz) from public;
grant execute on function private.detect_semantic_caching(uuid[], timestamptz) to service_role;
