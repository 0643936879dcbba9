-- Request deduplication and semantic caching order each chunk's calls by organization, prompt hash, provider
-- and model to measure the gap since the same prompt's previous call. Under the database's collation those
-- text keys are compared by strcoll, without abbreviated keys: a large part of these detectors' time in
-- `tokentra bench engine`. The partitions only need equal keys together, and collate "C" groups exactly the
-- same rows (equality is byte equality either way) comparing bytes; the calls within a prompt keep their
-- order by time, so every gap, count and cost is unchanged. Only the order the prompts come in may differ
-- under a collation other than C or C.UTF-8, and with it which five calls a finding gives as samples.

create or replace function private.detect_request_deduplication(p_orgs uuid[], p_now timestamp with time zone)
 returns setof private.recommendation_candidate
 language sql
 stable
 set search_path to ''
 set jit to 'off'
as $function$
  with p as (
    select private.detector_param('request_deduplication', 'min_monthly_savings') as min_savings,
           private.detector_param('request_deduplication', 'dedup_seconds') as dedup,
           private.detector_param('request_deduplication', 'min_share') as min_share
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), repeats as (
    select x.org_id, x.feature, x.provider, x.model,
           count(*) filter (where x.gap < p.dedup) as dup_requests,
           coalesce(sum(x.cost) filter (where x.gap < p.dedup), 0) as dup_cost,
           count(*) as hashed_requests,
           (array_agg(x.request_id) filter (where x.gap is not null))[1:5] as samples
      from (
        select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
               r.request_id, coalesce(r.cost_usd, 0) as cost,
               extract(epoch from r.occurred_at - lag(r.occurred_at) over (
                 partition by r.org_id, r.prompt_hash collate "C", r.provider collate "C", r.canonical_model collate "C"
                 order by r.occurred_at)) as gap
          from public.usage_records r
         where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.prompt_hash is not null
      ) x cross join p
     group by 1, 2, 3, 4
  )
  select d.org_id, 'request_deduplication', 'feature', d.feature, d.model,
         format('Deduplicate identical requests of feature %s on %s', d.feature, d.model),
         format('%s calls repeated the same prompt within %s s of an identical one.', private.fmt_count(d.dup_requests),
                p.dedup),
         coalesce(s.cost, 0) * w.monthly, coalesce(s.cost, 0) * w.monthly - d.dup_cost * w.monthly,
         format('cost of calls repeating a prompt within %s s, per month', p.dedup),
         0.85, 'low', 'low',
         jsonb_build_array('Coalesce in-flight identical requests (single-flight) in the client.',
                           'Debounce user actions that resend the same prompt.'),
         jsonb_build_object('requests', d.dup_requests, 'cost_per_request', d.dup_cost / greatest(d.dup_requests, 1),
                            'model', d.model, 'provider', d.provider, 'series', coalesce(s.series, '{}'::jsonb),
                            'sample_request_ids', to_jsonb(coalesce(d.samples, '{}'))),
         jsonb_build_object('conditions', jsonb_build_object('feature', d.feature, 'model', d.model),
                            'action', jsonb_build_object('type', 'enable_cache', 'ttl_seconds', p.dedup))
    from repeats d
    join w on w.org_id = d.org_id
   cross join p
    left join lateral (select s.cost, s.series from private.detector_scopes(array[d.org_id], w.since) s
                        where s.feature = d.feature and s.provider = d.provider and s.model = d.model) s on true
   where d.dup_requests >= p.min_share * d.hashed_requests and d.dup_cost * w.monthly >= p.min_savings
$function$;


create or replace function private.detect_semantic_caching(p_orgs uuid[], p_now timestamp with time zone)
 returns setof private.recommendation_candidate
 language sql
 stable
 set search_path to ''
 set jit to 'off'
as $function$
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
                 partition by r.org_id, r.prompt_hash collate "C", r.provider collate "C", r.canonical_model collate "C"
                 order by r.occurred_at)) as gap
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
$function$;

