-- prompt_compression: features whose median call sends a long prompt that is not read from the cache.
-- Savings: the share of the uncached input tokens a prompt compressor typically removes, at the model's
-- input price today, scaled to a month.
insert into private.detectors (category, function_name, description) values
  ('prompt_compression', 'private.detect_prompt_compression',
   'Features (not embeddings) whose median successful call sends at least long_prompt_tokens input tokens, '
   'mostly uncached.');
insert into private.detector_parameters (category, name, value, description) values
  ('prompt_compression', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('prompt_compression', 'long_prompt_tokens', 8000, 'Median input tokens of a successful call that make a prompt long.'),
  ('prompt_compression', 'max_cached_share', 0.1, 'At most this share (0..1) of the input tokens already cached.'),
  ('prompt_compression', 'compression_keeps', 0.7,
   'Share (0..1) of the uncached input tokens a prompt compressor typically keeps.');

create function private.detect_prompt_compression(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('prompt_compression', 'min_monthly_savings') as min_savings,
           private.detector_param('prompt_compression', 'long_prompt_tokens') as long_prompt,
           private.detector_param('prompt_compression', 'max_cached_share') as max_cached,
           private.detector_param('prompt_compression', 'compression_keeps') as keeps
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), shapes as (
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           percentile_disc(0.5) within group (order by r.input_tokens) as p50_input, count(*) as requests,
           sum(r.input_tokens) as input_tokens, sum(r.cached_tokens) as cached_tokens
      from public.usage_records r
     where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.status = 'success'
       and r.canonical_model not like 'text-embedding%'
     group by 1, 2, 3, 4
  ), found as (
    select x.*, w.monthly, s.cost * w.monthly as current, s.series, c.cost_usd * w.monthly as saved
      from shapes x
      join w on w.org_id = x.org_id
     cross join p
     cross join lateral private.usage_cost(x.provider, x.model, p_now,
                                           floor((x.input_tokens - x.cached_tokens) * (1 - p.keeps))::bigint,
                                           0, 0, 0, 0) c
      left join lateral (select s.cost, s.series from private.detector_scopes(array[x.org_id], w.since) s
                          where s.feature = x.feature and s.provider = x.provider and s.model = x.model) s on true
     where x.p50_input >= p.long_prompt and x.cached_tokens <= p.max_cached * x.input_tokens
       and c.cost_usd * w.monthly >= p.min_savings
  )
  select f.org_id, 'prompt_compression', 'feature', f.feature, f.model,
         format('Compress the long prompts of feature %s on %s', f.feature, f.model),
         format('The median call of feature %s sends %s input tokens, uncached.', f.feature,
                private.fmt_count(f.p50_input)),
         coalesce(f.current, 0), coalesce(f.current, 0) - f.saved,
         format('%s of the uncached input tokens removed (typical of prompt compression), at the input price '
                '(pricing table)', private.fmt_share(1 - p.keeps)),
         0.5, 'medium', 'medium',
         jsonb_build_array('Trim retrieved context to the passages that score highest; drop boilerplate.',
                           'Try a prompt compressor (e.g. LLMLingua) on a sample and compare answers.'),
         jsonb_build_object('requests', f.requests,
                            'cost_per_request', coalesce(f.current, 0) / f.monthly / greatest(f.requests, 1),
                            'model', f.model, 'provider', f.provider, 'median_input_tokens', f.p50_input,
                            'series', coalesce(f.series, '{}'::jsonb), 'sample_request_ids', '[]'::jsonb),
         null::jsonb
    from found f cross join p
$$;
comment on function private.detect_prompt_compression(uuid[], timestamptz) is
  'Recommendations to compress long uncached prompts.';
revoke all on function private.detect_prompt_compression(uuid[], timestamptz) from public;
grant execute on function private.detect_prompt_compression(uuid[], timestamptz) to service_role;
