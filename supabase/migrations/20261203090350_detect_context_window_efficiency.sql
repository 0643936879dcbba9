-- context_window_efficiency: calls that share a system prompt (same system_prompt_hash) resend the same
-- prefix every time; with the provider's prompt caching those prefix tokens are billed at the cache-read
-- price. The shared prefix is at most the shortest call of its group, used as the (conservative) prefix
-- length. Savings: the scope's tokens priced today as sent, against the same with every call but the
-- first of each system prompt reading that prefix from the cache.
insert into private.detectors (category, function_name, description) values
  ('context_window_efficiency', 'private.detect_context_window_efficiency',
   'Features resending long system prompts (at least min_prefix_tokens) with little of their input read from '
   'the prompt cache.');
insert into private.detector_parameters (category, name, value, description) values
  ('context_window_efficiency', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('context_window_efficiency', 'min_prefix_tokens', 1024,
   'Shortest call of a system prompt, in tokens: below this providers do not cache a prefix.'),
  ('context_window_efficiency', 'max_cached_share', 0.1,
   'A system prompt counts only while at most this share (0..1) of its input tokens is already cached.');

create function private.detect_context_window_efficiency(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('context_window_efficiency', 'min_monthly_savings') as min_savings,
           private.detector_param('context_window_efficiency', 'min_prefix_tokens') as min_prefix,
           private.detector_param('context_window_efficiency', 'max_cached_share') as max_cached
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), prompts as (
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           count(*) as requests, min(r.input_tokens) as min_input, sum(r.input_tokens) as input_tokens,
           sum(r.output_tokens) as output_tokens, sum(r.cached_tokens) as cached_tokens
      from public.usage_records r
     where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w)
       and r.system_prompt_hash is not null
     group by 1, 2, 3, 4, r.system_prompt_hash
    having count(*) > 1
  ), groups as (
    select x.org_id, x.feature, x.provider, x.model, sum(x.input_tokens)::bigint as input_tokens,
           sum(x.output_tokens)::bigint as output_tokens, sum(x.cached_tokens)::bigint as cached_tokens,
           sum((x.requests - 1) * x.min_input)::bigint as cacheable, sum(x.requests) as requests, count(*) as prompts
      from prompts x cross join p
     where x.min_input >= p.min_prefix and x.cached_tokens <= p.max_cached * x.input_tokens
     group by 1, 2, 3, 4
  )
  select g.org_id, 'context_window_efficiency', 'feature', g.feature, g.model,
         format('Cache the repeated system prompts of feature %s on %s', g.feature, g.model),
         format('%s calls resend %s system prompts of at least %s tokens with under %s of input served from the '
                'prompt cache.', private.fmt_count(g.requests), g.prompts, p.min_prefix, private.fmt_share(p.max_cached)),
         m.current, m.projected,
         'the shared prefix (the shortest call per system prompt) of every call but the first billed at the '
         'cache-read price (pricing table)',
         0.7, 'low', 'low',
         jsonb_build_array('Put the system prompt and other static context first, the variable part last.',
                           'Enable prompt caching (Anthropic: cache_control; OpenAI: automatic above 1,024 tokens).'),
         jsonb_build_object('requests', g.requests, 'cost_per_request', now_cost.cost_usd / greatest(g.requests, 1),
                            'model', g.model, 'provider', g.provider, 'system_prompts', g.prompts,
                            'cacheable_tokens', g.cacheable,
                            'series', coalesce((select s.series from private.detector_scopes(array[g.org_id], w.since) s
                                                 where s.feature = g.feature and s.provider = g.provider
                                                   and s.model = g.model), '{}'::jsonb),
                            'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', g.feature, 'model', g.model),
                            'action', jsonb_build_object('type', 'enable_prompt_cache'))
    from groups g
    join w on w.org_id = g.org_id
   cross join p
   cross join lateral private.usage_cost(g.provider, g.model, p_now, g.input_tokens, g.output_tokens,
                                         g.cached_tokens, 0, 0) now_cost
   cross join lateral private.usage_cost(g.provider, g.model, p_now, g.input_tokens, g.output_tokens,
                                         least(g.cached_tokens + g.cacheable, g.input_tokens), 0, 0) cached_cost
   cross join lateral (select now_cost.cost_usd * w.monthly as current, cached_cost.cost_usd * w.monthly as projected) m
   where m.current - m.projected >= p.min_savings
$$;
comment on function private.detect_context_window_efficiency(uuid[], timestamptz) is
  'Recommendations to enable prompt caching for features resending long system prompts.';
revoke all on function private.detect_context_window_efficiency(uuid[], timestamptz) from public;
grant execute on function private.detect_context_window_efficiency(uuid[], timestamptz) to service_role;
