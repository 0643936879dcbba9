-- The model registry: every priced model with what routing needs to know about it beyond its price.
-- genai-prices (private.price_models, private.model_prices) gives names, context windows, a deprecated
-- flag, prices and whether a batch price exists; it has no tiers, capabilities, output limits,
-- retirement dates or successors. Those come from private.model_families, a table the project keeps
-- from the providers' public model pages, one row per family (a model id prefix). A model takes the
-- longest family prefix that matches its id; a model of no known family gets its tier from its price
-- and unknown (null) capabilities, which routing treats as "not known to support".

-- ---------------------------------------------------------------- families
create table private.model_families (
  family text primary key constraint family_is_lower_case check (family = lower(family)),
  -- null: the family is the same wherever it is hosted (Claude on Anthropic, Bedrock and Vertex)
  provider_id text,
  tier text not null constraint tier_is_known check (tier in ('budget', 'mid', 'premium', 'flagship')),
  supports_tools boolean not null,
  supports_vision boolean not null,
  supports_json_mode boolean not null,
  supports_embeddings boolean not null default false,
  supports_batch boolean not null,
  context_window integer constraint context_window_is_positive check (context_window > 0),
  max_output_tokens integer constraint max_output_tokens_is_positive check (max_output_tokens > 0),
  retires_on date,
  successor text,
  source text not null
);
alter table private.model_families enable row level security;
comment on table private.model_families is
  'Kept by the project from the providers'' public model pages: per model-id prefix, tier, capabilities, '
  'output limit, retirement date and successor. The longest matching prefix wins.';
comment on column private.model_families.context_window is 'Used only where genai-prices has none.';

insert into private.model_families (family, provider_id, tier, supports_tools, supports_vision, supports_json_mode,
                                    supports_embeddings, supports_batch, context_window, max_output_tokens,
                                    retires_on, successor, source) values
  -- OpenAI (platform.openai.com/docs/models, /docs/deprecations)
  ('gpt-3.5-turbo', 'openai', 'budget', true, false, true, false, true, 16385, 4096, null, 'gpt-4o-mini', 'openai models'),
  ('gpt-4', 'openai', 'premium', true, false, false, false, true, 8192, 8192, null, 'gpt-4o', 'openai models'),
  ('gpt-4-turbo', 'openai', 'premium', true, true, true, false, true, 128000, 4096, null, 'gpt-4o', 'openai models'),
  ('gpt-4.5-preview', 'openai', 'flagship', true, true, true, false, true, 128000, 16384, '2025-07-14', 'gpt-4.1', 'openai deprecations'),
  ('gpt-4o', 'openai', 'mid', true, true, true, false, true, 128000, 16384, null, null, 'openai models'),
  ('gpt-4o-mini', 'openai', 'budget', true, true, true, false, true, 128000, 16384, null, null, 'openai models'),
  ('gpt-4.1', 'openai', 'mid', true, true, true, false, true, 1047576, 32768, null, null, 'openai models'),
  ('gpt-4.1-mini', 'openai', 'budget', true, true, true, false, true, 1047576, 32768, null, null, 'openai models'),
  ('gpt-4.1-nano', 'openai', 'budget', true, true, true, false, true, 1047576, 32768, null, null, 'openai models'),
  ('gpt-5', 'openai', 'premium', true, true, true, false, true, 400000, 128000, null, null, 'openai models'),
  ('gpt-5-mini', 'openai', 'mid', true, true, true, false, true, 400000, 128000, null, null, 'openai models'),
  ('gpt-5-nano', 'openai', 'budget', true, true, true, false, true, 400000, 128000, null, null, 'openai models'),
  ('o1', 'openai', 'flagship', true, true, true, false, true, 200000, 100000, null, null, 'openai models'),
  ('o1-mini', 'openai', 'mid', false, false, false, false, true, 128000, 65536, null, 'o4-mini', 'openai models'),
  ('o3', 'openai', 'premium', true, true, true, false, true, 200000, 100000, null, null, 'openai models'),
  ('o3-mini', 'openai', 'mid', true, false, true, false, true, 200000, 100000, null, 'o4-mini', 'openai models'),
  ('o4-mini', 'openai', 'mid', true, true, true, false, true, 200000, 100000, null, null, 'openai models'),
  ('text-embedding-3-small', 'openai', 'budget', false, false, false, true, true, 8191, null, null, null, 'openai models'),
  ('text-embedding-3-large', 'openai', 'mid', false, false, false, true, true, 8191, null, null, null, 'openai models'),
  ('text-embedding-ada-002', 'openai', 'budget', false, false, false, true, true, 8191, null, null,
   'text-embedding-3-small', 'openai models'),
  -- Anthropic (docs.anthropic.com models overview and model deprecations)
  ('claude-2', null, 'premium', false, false, false, false, false, 100000, 4096, '2025-07-21', 'claude-sonnet-4-5',
   'anthropic deprecations'),
  ('claude-v1', null, 'premium', false, false, false, false, false, 100000, 4096, '2025-07-21', 'claude-sonnet-4-5',
   'anthropic deprecations'),
  ('claude-3-haiku', null, 'budget', true, true, false, false, true, 200000, 4096, null, 'claude-haiku-4-5',
   'anthropic models'),
  ('claude-3-sonnet', null, 'mid', true, true, false, false, true, 200000, 4096, '2025-07-21', 'claude-sonnet-4-5',
   'anthropic deprecations'),
  ('claude-3-opus', null, 'flagship', true, true, false, false, true, 200000, 4096, '2026-01-05', 'claude-opus-4-1',
   'anthropic deprecations'),
  ('claude-3-5-haiku', null, 'budget', true, true, false, false, true, 200000, 8192, null, 'claude-haiku-4-5',
   'anthropic models'),
  ('claude-3-5-sonnet', null, 'mid', true, true, false, false, true, 200000, 8192, '2025-10-22', 'claude-sonnet-4-5',
   'anthropic deprecations'),
  ('claude-3-7-sonnet', null, 'mid', true, true, false, false, true, 200000, 64000, null, 'claude-sonnet-4-5',
   'anthropic models'),
  ('claude-haiku-4-5', null, 'budget', true, true, true, false, true, 200000, 64000, null, null, 'anthropic models'),
  ('claude-sonnet-4', null, 'mid', true, true, true, false, true, 200000, 64000, null, null, 'anthropic models'),
  ('claude-4-sonnet', null, 'mid', true, true, true, false, true, 200000, 64000, null, null, 'anthropic models'),
  ('claude-opus-4', null, 'flagship', true, true, true, false, true, 200000, 32000, null, null, 'anthropic models'),
  ('claude-4-opus', null, 'flagship', true, true, true, false, true, 200000, 32000, null, null, 'anthropic models'),
  -- Google (ai.google.dev/gemini-api/docs/models)
  ('gemini-1.5-flash', 'google', 'budget', true, true, true, false, true, 1048576, 8192, null, 'gemini-2.5-flash',
   'google models'),
  ('gemini-1.5-pro', 'google', 'mid', true, true, true, false, true, 2097152, 8192, null, 'gemini-2.5-pro',
   'google models'),
  ('gemini-2.0-flash', 'google', 'budget', true, true, true, false, true, 1048576, 8192, null, 'gemini-2.5-flash',
   'google models'),
  ('gemini-2.0-flash-lite', 'google', 'budget', true, true, true, false, true, 1048576, 8192, null,
   'gemini-2.5-flash-lite', 'google models'),
  ('gemini-2.5-flash', 'google', 'budget', true, true, true, false, true, 1048576, 65536, null, null, 'google models'),
  ('gemini-2.5-flash-lite', 'google', 'budget', true, true, true, false, true, 1048576, 65536, null, null,
   'google models'),
  ('gemini-2.5-pro', 'google', 'mid', true, true, true, false, true, 1048576, 65536, null, null, 'google models'),
  ('gemini-embedding', 'google', 'budget', false, false, false, true, true, 2048, null, null, null, 'google models'),
  -- DeepSeek (api-docs.deepseek.com pricing page)
  ('deepseek-chat', 'deepseek', 'budget', true, false, true, false, false, 128000, 8192, null, null, 'deepseek models'),
  ('deepseek-reasoner', 'deepseek', 'mid', false, false, true, false, false, 128000, 65536, null, null,
   'deepseek models'),
  -- Mistral (docs.mistral.ai models overview)
  ('mistral-small', 'mistral', 'budget', true, true, true, false, true, 128000, 32768, null, null, 'mistral models'),
  ('mistral-medium', 'mistral', 'mid', true, true, true, false, true, 128000, 32768, null, null, 'mistral models'),
  ('mistral-large', 'mistral', 'premium', true, true, true, false, true, 128000, 32768, null, null, 'mistral models'),
  ('codestral', 'mistral', 'budget', true, false, true, false, true, 256000, 32768, null, null, 'mistral models'),
  ('mistral-embed', 'mistral', 'budget', false, false, false, true, true, 8192, null, null, null, 'mistral models');

-- ---------------------------------------------------------------- quality priors
-- Quality on a 0..1 scale per task category, before any feedback: the starting point routing uses
-- until an organization's own scores outweigh it. Families with seed_001 as their source carry the
-- published table's figures (divided by 100); the rest are the project's estimates from the same
-- scale, placed against their tier neighbours, and say so.
create table private.model_quality_priors (
  family text not null references private.model_families (family) on delete cascade,
  category text not null constraint category_is_known
    check (category in ('chat', 'content', 'analysis', 'coding', 'reasoning', 'creative', 'embedding', 'multimodal')),
  score numeric(4, 3) not null constraint score_is_between_0_and_1 check (score between 0 and 1),
  source text not null,
  primary key (family, category)
);
alter table private.model_quality_priors enable row level security;
comment on table private.model_quality_priors is
  'Prior quality (0..1) per model family and task category; organizations'' feedback updates it (model_quality).';

insert into private.model_quality_priors (family, category, score, source)
select f.family, c.category, c.score / 100.0, f.source
from (values
  -- family, source, chat, content, analysis, coding, reasoning, creative, embedding, multimodal
  ('gpt-4o-mini', 'seed_001', array[78, 75, 72, 70, 65, 73, 0, 70]),
  ('claude-3-5-haiku', 'seed_001', array[82, 80, 78, 80, 70, 78, 0, 75]),
  ('gemini-2.0-flash', 'seed_001', array[76, 74, 75, 72, 68, 70, 0, 78]),
  ('deepseek-chat', 'seed_001', array[85, 82, 84, 90, 88, 78, 0, 0]),
  ('gpt-4o', 'seed_001', array[90, 88, 87, 85, 82, 88, 0, 90]),
  ('claude-sonnet-4', 'seed_001', array[92, 90, 91, 93, 88, 90, 0, 88]),
  ('claude-4-sonnet', 'seed_001', array[92, 90, 91, 93, 88, 90, 0, 88]),
  ('gemini-2.5-pro', 'seed_001', array[88, 86, 88, 84, 85, 84, 0, 92]),
  ('claude-opus-4', 'seed_001', array[96, 95, 96, 97, 98, 96, 0, 94]),
  ('claude-4-opus', 'seed_001', array[96, 95, 96, 97, 98, 96, 0, 94]),
  ('o1', 'seed_001', array[85, 80, 92, 95, 99, 75, 0, 80]),
  ('text-embedding-3-small', 'seed_001', array[0, 0, 0, 0, 0, 0, 85, 0]),
  ('text-embedding-3-large', 'seed_001', array[0, 0, 0, 0, 0, 0, 95, 0]),
  ('gpt-3.5-turbo', 'estimate', array[72, 68, 64, 62, 55, 66, 0, 0]),
  ('gpt-4', 'estimate', array[86, 84, 83, 80, 78, 84, 0, 0]),
  ('gpt-4-turbo', 'estimate', array[88, 86, 85, 83, 80, 86, 0, 84]),
  ('gpt-4.5-preview', 'estimate', array[93, 93, 90, 87, 85, 94, 0, 90]),
  ('gpt-4.1', 'estimate', array[91, 89, 89, 90, 85, 88, 0, 90]),
  ('gpt-4.1-mini', 'estimate', array[84, 82, 81, 82, 76, 80, 0, 80]),
  ('gpt-4.1-nano', 'estimate', array[74, 71, 70, 68, 62, 69, 0, 68]),
  ('gpt-5', 'estimate', array[95, 94, 95, 96, 96, 94, 0, 93]),
  ('gpt-5-mini', 'estimate', array[89, 87, 89, 90, 89, 86, 0, 87]),
  ('gpt-5-nano', 'estimate', array[80, 77, 78, 78, 76, 76, 0, 75]),
  ('o1-mini', 'estimate', array[75, 72, 84, 88, 90, 68, 0, 0]),
  ('o3', 'estimate', array[88, 85, 95, 96, 99, 80, 0, 88]),
  ('o3-mini', 'estimate', array[78, 75, 86, 90, 93, 70, 0, 0]),
  ('o4-mini', 'estimate', array[82, 78, 89, 92, 94, 74, 0, 84]),
  ('text-embedding-ada-002', 'estimate', array[0, 0, 0, 0, 0, 0, 75, 0]),
  ('claude-2', 'estimate', array[80, 80, 76, 70, 68, 80, 0, 0]),
  ('claude-v1', 'estimate', array[74, 74, 70, 62, 60, 74, 0, 0]),
  ('claude-3-haiku', 'estimate', array[76, 74, 72, 70, 64, 72, 0, 70]),
  ('claude-3-sonnet', 'estimate', array[84, 83, 81, 78, 75, 83, 0, 78]),
  ('claude-3-opus', 'estimate', array[91, 91, 90, 86, 87, 92, 0, 86]),
  ('claude-3-5-sonnet', 'estimate', array[90, 89, 89, 91, 85, 89, 0, 86]),
  ('claude-3-7-sonnet', 'estimate', array[91, 90, 90, 92, 88, 90, 0, 87]),
  ('claude-haiku-4-5', 'estimate', array[87, 85, 85, 88, 82, 84, 0, 82]),
  ('gemini-1.5-flash', 'estimate', array[72, 70, 70, 66, 62, 68, 0, 74]),
  ('gemini-1.5-pro', 'estimate', array[84, 83, 84, 80, 78, 82, 0, 88]),
  ('gemini-2.0-flash-lite', 'estimate', array[72, 70, 70, 66, 62, 66, 0, 72]),
  ('gemini-2.5-flash', 'estimate', array[84, 82, 83, 82, 80, 80, 0, 86]),
  ('gemini-2.5-flash-lite', 'estimate', array[77, 75, 76, 73, 70, 72, 0, 78]),
  ('gemini-embedding', 'estimate', array[0, 0, 0, 0, 0, 0, 90, 0]),
  ('deepseek-reasoner', 'estimate', array[82, 80, 88, 92, 95, 76, 0, 0]),
  ('mistral-small', 'estimate', array[76, 74, 72, 72, 66, 72, 0, 70]),
  ('mistral-medium', 'estimate', array[84, 82, 81, 80, 76, 80, 0, 78]),
  ('mistral-large', 'estimate', array[88, 86, 86, 85, 82, 85, 0, 82]),
  ('codestral', 'estimate', array[70, 66, 70, 86, 72, 62, 0, 0]),
  ('mistral-embed', 'estimate', array[0, 0, 0, 0, 0, 0, 80, 0])
) f (family, source, scores)
cross join lateral unnest(array['chat', 'content', 'analysis', 'coding', 'reasoning', 'creative', 'embedding',
                                'multimodal'], f.scores) as c (category, score);

-- Registry data is public knowledge, like prices: signed-in users read it.
create policy "signed-in users read model families" on private.model_families for select to authenticated
  using (true);
create policy "signed-in users read quality priors" on private.model_quality_priors for select to authenticated
  using (true);
revoke all on private.model_families, private.model_quality_priors from public, anon, authenticated;
grant select on private.model_families, private.model_quality_priors to authenticated, service_role;

-- ---------------------------------------------------------------- the registry
-- What a model is for, from its id: specialised variants (audio, realtime, speech, images, search,
-- OCR, moderation) share a family's prefix but not its chat abilities, so they take no family and are
-- never routing candidates for text calls.
create function private.model_kind(model_id text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
    when model_id ~* '(^|[-_./:])(audio|realtime|transcribe|tts|speech|whisper|image|dall-e|search|live|ocr|moderation|computer-use|deep-research|robotics|voxtral)([-_./:]|$)'
      then 'special'
    when model_id ~* 'embed' then 'embedding'
    else 'text' end
$$;
comment on function private.model_kind(text) is
  'text, embedding or special (audio, realtime, speech, image, search, OCR, moderation...) from a model id.';
grant execute on function private.model_kind(text) to authenticated, service_role;

-- The family of a model id: the longest prefix, the provider's own family before a hosted-anywhere one.
create function private.model_family(provider_id text, model_id text) returns text
language sql stable parallel safe set search_path = '' as $$
  select f.family from private.model_families f
   where lower(model_family.model_id) like f.family || '%'
     and (f.provider_id is null or f.provider_id = model_family.provider_id)
     -- a prefix ends at a separator, so gpt-4 is not the family of gpt-4o
     and substr(lower(model_family.model_id), length(f.family) + 1, 1) in ('', '-', ':', '@', '.', '_', '/')
   order by length(f.family) desc, f.provider_id is null
   limit 1
$$;
comment on function private.model_family(text, text) is
  'The registry family of a model id (longest matching prefix ending at a separator), or null.';
revoke all on function private.model_family(text, text) from public;
grant execute on function private.model_family(text, text) to authenticated, service_role;

-- Tier from price where no family says: blended price per million tokens (3 input : 1 output).
create function private.tier_from_price(input_mtok numeric, output_mtok numeric) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
    when input_mtok is null and output_mtok is null then null
    when (3 * coalesce(input_mtok, 0) + coalesce(output_mtok, 0)) / 4 < 1 then 'budget'
    when (3 * coalesce(input_mtok, 0) + coalesce(output_mtok, 0)) / 4 < 6 then 'mid'
    when (3 * coalesce(input_mtok, 0) + coalesce(output_mtok, 0)) / 4 < 30 then 'premium'
    else 'flagship' end
$$;
comment on function private.tier_from_price(numeric, numeric) is
  'budget/mid/premium/flagship from a 3:1 blended USD per million tokens (under 1, 6, 30, else flagship).';
grant execute on function private.tier_from_price(numeric, numeric) to authenticated, service_role;

create view public.model_registry with (security_invoker = true) as
  with current_prices as (
    -- the standard tier's current price set, base threshold, the window holding the current UTC time
    select distinct on (p.provider_id, p.model_id)
           p.provider_id, p.model_id, p.input_mtok, p.output_mtok, p.cache_read_mtok, p.cache_write_mtok,
           p.effective_from
      from private.model_prices p
     where p.service_tier = '' and p.above_input_tokens = -1 and p.effective_from <= now()
       and (now() at time zone 'UTC')::time >= p.daily_from and (now() at time zone 'UTC')::time < p.daily_until
       and (p.input_mtok is not null or p.output_mtok is not null)
     order by p.provider_id, p.model_id, p.effective_from desc
  )
  select c.provider_id as provider, c.model_id as model, m.name, private.model_kind(c.model_id) as kind, f.family,
         coalesce(f.tier, private.tier_from_price(c.input_mtok, c.output_mtok)) as tier,
         case when f.family is null then 'price' else 'family' end as tier_source,
         f.supports_tools, f.supports_vision, f.supports_json_mode,
         coalesce(f.supports_embeddings, m.model_id ilike '%embed%') as supports_embeddings,
         coalesce(f.supports_batch, false)
           or exists (select 1 from private.model_prices b
                       where b.provider_id = c.provider_id and b.model_id = c.model_id and b.service_tier = 'batch')
           as supports_batch,
         coalesce(m.context_window, f.context_window) as context_window,
         f.max_output_tokens,
         coalesce(m.deprecated, false) or coalesce(f.retires_on <= current_date, false) as deprecated,
         f.retires_on, f.successor,
         c.input_mtok, c.output_mtok, c.cache_read_mtok, c.cache_write_mtok,
         nullif(c.effective_from, '-infinity') as price_effective_from,
         (select jsonb_object_agg(q.category, q.score order by q.category)
            from private.model_quality_priors q where q.family = f.family) as quality_priors
    from current_prices c
    left join private.price_models m on m.provider_id = c.provider_id and m.model_id = c.model_id
    -- lateral, so the family is looked up once per model, not once per (model, family) pair
    left join lateral (select private.model_family(c.provider_id, c.model_id) as family
                        where private.model_kind(c.model_id) <> 'special') fam on true
    left join private.model_families f on f.family = fam.family;
comment on view public.model_registry is
  'Every priced model: provider, kind (text, embedding, special), tier, capabilities, context and output limits, deprecation and successor, '
  'current standard price (USD per million tokens) and prior quality per task category (read-only).';
grant select on public.model_registry to authenticated, service_role;
