-- Partial response caching: calls that start with the same long prefix (system prompt plus few-shot
-- examples, a shared document, earlier turns; the SDK sends its hash and its share of the prompt under
-- usage_records.metadata -> 'tokentra', never the text) but are not served from the provider's prompt
-- cache. A repeat within the cache's lifetime of the previous one would read the prefix at the
-- cache-read price; each run of repeats starts with one cache write (priced above input by some
-- providers). Calls whose system prompt alone is cacheable by context_window_efficiency's rule are left
-- to that detector, so the same prefix tokens are never claimed twice.

insert into private.detectors (category, function_name, description) values
  ('partial_response_caching', 'private.detect_partial_response_caching',
   'Shared prompt prefixes repeated within the cache''s lifetime but never read from the prompt cache.');

insert into private.detector_parameters (category, name, value, description) values
  ('partial_response_caching', 'cache_ttl_seconds', 300,
   'How long a provider keeps a prefix cached after its last use: only a repeat within it is a cache read.'),
  ('partial_response_caching', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.');

create function private.detect_partial_response_caching(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with w as (
    select * from private.detector_window(p_orgs, p_now)
  ), scopes as (
    -- The window's sums per feature and model with the month factor; counts as numeric, rates are fractions.
    select s.org_id, s.feature, s.provider, s.model, s.requests::numeric as requests, s.errors::numeric as errors,
           s.timeouts::numeric as timeouts, s.retries::numeric as retries, s.cancelled::numeric as cancelled,
           s.input_tokens, s.output_tokens, s.cached_tokens, s.cost, s.error_cost, s.timeout_cost, s.cancelled_cost,
           s.series, (select count(*) from pg_catalog.jsonb_object_keys(s.series)) as days_active, w.days, w.monthly
      from private.detector_scopes(p_orgs, (select min(w.since) from w)) s
      join w on w.org_id = s.org_id
  ), params as (
    -- The shortest prefix providers cache and the share of input already cached above which a prefix
    -- counts as cached are context_window_efficiency's: the same facts, and its rule decides which
    -- system prompts are its own.
    select private.detector_param('context_window_efficiency', 'min_prefix_tokens') as min_prefix,
           private.detector_param('context_window_efficiency', 'max_cached_share') as max_cached,
           private.detector_param('partial_response_caching', 'cache_ttl_seconds') as ttl,
           private.detector_param('partial_response_caching', 'min_monthly_savings') as min_savings
  ), system_prompts as (
    -- The system prompt groups context_window_efficiency reads as cacheable: the shortest call of the
    -- group is a long prefix and little of the input is already cached.
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           r.system_prompt_hash
    from public.usage_records r, params p
    where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w)
      and r.system_prompt_hash is not null
    group by 1, 2, 3, 4, 5, p.min_prefix, p.max_cached
    having count(*) > 1 and min(r.input_tokens) >= p.min_prefix and sum(r.cached_tokens) <= p.max_cached * sum(r.input_tokens)
  ), calls as (
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           r.request_id, r.occurred_at, r.input_tokens, r.cached_tokens, r.system_prompt_hash, x.prefix_hash,
           floor(x.share * r.input_tokens) as prefix_tokens,
           extract(epoch from r.occurred_at - lag(r.occurred_at) over by_prefix) as gap
    from public.usage_records r
    cross join lateral (
      select r.metadata -> 'tokentra' ->> 'prefix_hash' as prefix_hash,
             case when jsonb_typeof(r.metadata -> 'tokentra' -> 'prefix_share') = 'number'
                  then least(greatest((r.metadata -> 'tokentra' ->> 'prefix_share')::float8, 0), 1) end as share) x
    where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.status = 'success'
      and r.metadata -> 'tokentra' ? 'prefix_hash' and x.share is not null
    window by_prefix as (partition by r.org_id, x.prefix_hash, r.provider, r.canonical_model order by r.occurred_at)
  ), prefixes as (
    -- Per shared prefix: calls within the cache's lifetime of the previous one (warm: a cache read) and
    -- the others (each starts a run: a cache write), with the prefix's length (the shortest seen).
    select c.org_id, c.feature, c.provider, c.model, c.prefix_hash, c.system_prompt_hash, count(*) as requests,
           count(*) filter (where c.gap <= p.ttl) as warm, min(c.prefix_tokens) as prefix_tokens,
           sum(c.input_tokens) as input_tokens, sum(c.cached_tokens) as cached_tokens,
           (array_agg(c.request_id order by c.occurred_at desc) filter (where c.gap <= p.ttl))[1:5] as samples
    from calls c, params p
    group by 1, 2, 3, 4, 5, 6
    having count(*) > 1
  ), priced as (
    select f.*, f.warm * f.prefix_tokens as reads, (f.requests - f.warm) * f.prefix_tokens as writes,
           f.warm * f.prefix_tokens * (u.input - u.read) / 1e6
             - (f.requests - f.warm) * f.prefix_tokens * (u.write - u.input) / 1e6 as saved
    from prefixes f, params p
    cross join lateral (
      select (select c.cost_usd from private.usage_cost(f.provider, f.model, now(), 1000000, 0, 0, 0, 0) c) as input,
             (select c.cost_usd from private.usage_cost(f.provider, f.model, now(), 1000000, 0, 1000000, 0, 0) c) as read,
             (select c.cost_usd from private.usage_cost(f.provider, f.model, now(), 1000000, 0, 0, 1000000, 0) c) as write
    ) u
    where f.prefix_tokens >= p.min_prefix and f.cached_tokens <= p.max_cached * f.input_tokens and f.warm > 0
      and u.input is not null
      and not exists (select from system_prompts s
                      where s.org_id = f.org_id and s.feature = f.feature and s.provider = f.provider
                        and s.model = f.model and s.system_prompt_hash = f.system_prompt_hash)
  ), groups as (
    select g.org_id, g.feature, g.provider, g.model, sum(g.saved) as saved, count(*) as prefixes,
           sum(g.requests) as requests, sum(g.warm) as warm, sum(g.reads) as reads, sum(g.writes) as writes
    from priced g
    where g.saved > 0  -- repeats too sparse: the writes would cost more than the reads save
    group by 1, 2, 3, 4
  )
  select g.org_id, 'partial_response_caching', 'feature', g.feature, g.model,
         format('Serve the shared prompt prefixes of feature %s on %s from the prompt cache', g.feature, g.model),
         format('%s of %s calls of feature `%s` on %s repeat one of %s prompt prefixes (system prompt plus leading '
                'messages, at least %s tokens) within %s minutes of the previous use, yet none is read from the '
                'prompt cache.', to_char(g.warm, 'FM999,999,999,990'), to_char(g.requests, 'FM999,999,999,990'),
                g.feature, g.model, g.prefixes, p.min_prefix, floor(p.ttl / 60)),
         s.cost * s.monthly, s.cost * s.monthly - g.saved * s.monthly,
         format('prefix tokens (the prefix''s character share of the prompt times its input tokens) of calls '
                'within %s s of the previous use of their prefix billed at the cache-read price instead of input, '
                'less the cache-write premium of the first call of each run (pricing table)', p.ttl),
         0.7, 'low', 'low',
         jsonb_build_array(
           'Put the static context (instructions, examples, shared documents) first and the variable part last.',
           case when g.provider = 'anthropic'
                then 'Mark the end of the shared prefix with cache_control (Anthropic), so repeats read it from '
                     'the cache.'
                else 'Keep the shared prefix byte-identical (no timestamps or ids inside it) and pass a '
                     'prompt_cache_key per prefix, so repeats land on a warm cache.' end,
           'Check cached_tokens in the usage of the next calls.'),
         jsonb_build_object('requests', g.requests, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', g.model, 'provider', g.provider, 'shared_prefixes', g.prefixes,
                            'warm_requests', g.warm, 'cache_read_tokens', g.reads::bigint,
                            'cache_write_tokens', g.writes::bigint, 'cache_ttl_seconds', p.ttl,
                            'series', s.series,
                            'sample_request_ids', to_jsonb(array(
                              select smp from priced k cross join lateral unnest(k.samples) smp
                              where k.org_id = g.org_id and k.feature = g.feature and k.provider = g.provider
                                and k.model = g.model and k.saved > 0
                              limit 5))),
         jsonb_build_object('conditions', jsonb_build_object('feature', g.feature, 'model', g.model),
                            'action', jsonb_build_object('type', 'enable_prompt_cache', 'ttl_seconds', p.ttl))
  from groups g
  cross join params p
  join scopes s
    on s.org_id = g.org_id and s.feature = g.feature and s.provider = g.provider and s.model = g.model
  where g.saved * s.monthly >= p.min_savings and g.saved < s.cost
$$;
comment on function private.detect_partial_response_caching(uuid[], timestamptz) is
  'Per feature and model, shared prompt prefixes (SDK-measured) repeated within cache_ttl_seconds but not read '
  'from the prompt cache: prefix tokens of warm repeats at the cache-read price less the cache-write premium of '
  'each run''s first call, per month.';
revoke all on function private.detect_partial_response_caching(uuid[], timestamptz) from public;
grant execute on function private.detect_partial_response_caching(uuid[], timestamptz) to service_role;

