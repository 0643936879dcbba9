-- request_deduplication: the same prompt (prompt_hash) sent again to the same provider and model within
-- dedup_seconds of an identical one. Savings: the cost of those repeats, scaled to a month.
insert into private.detectors (category, function_name, description) values
  ('request_deduplication', 'private.detect_request_deduplication',
   'Features where at least min_share of hashed calls repeat an identical prompt within dedup_seconds.');
insert into private.detector_parameters (category, name, value, description) values
  ('request_deduplication', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('request_deduplication', 'dedup_seconds', 60, 'A repeat of the same prompt within this many seconds is a duplicate.'),
  ('request_deduplication', 'min_share', 0.05, 'Share (0..1) of the scope''s hashed calls that must be duplicates.');

create function private.detect_request_deduplication(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
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
                 partition by r.org_id, r.prompt_hash, r.provider, r.canonical_model order by r.occurred_at)) as gap
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
$$;
comment on function private.detect_request_deduplication(uuid[], timestamptz) is
  'Recommendations to coalesce identical requests sent within seconds of each other.';
revoke all on function private.detect_request_deduplication(uuid[], timestamptz) from public;
grant execute on function private.detect_request_deduplication(uuid[], timestamptz) to service_role;
