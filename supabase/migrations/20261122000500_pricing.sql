-- Pricing: the genai-prices catalogue (providers, name-matching rules) and effective-dated prices,
-- and the SQL that prices one LLM call. tokentra_platform/pricing.py fills these tables; nothing
-- here computes prices in Python, so ingest, re-pricing and reports all agree on one definition.

-- ---------------------------------------------------------------- catalogue
-- The catalogue is a snapshot of genai-prices: replaced as a whole when genai-prices changes, so it
-- has no history of its own. Prices (model_prices, below) keep their history.
create table private.price_providers (
  provider_id text primary key,
  position integer not null constraint providers_have_distinct_positions unique,
  name text not null,
  api_pattern text,
  fallback_provider_ids text[] not null default '{}'
);
alter table private.price_providers enable row level security;
comment on table private.price_providers is
  'genai-prices providers, in its order (first match wins); fallbacks are searched when a provider lacks a model.';

create table private.price_models (
  provider_id text not null,
  model_id text not null,
  position integer not null,
  name text,
  context_window integer,
  deprecated boolean not null default false,
  primary key (provider_id, model_id)
);
alter table private.price_models enable row level security;
-- Resolution's last resort is the model id itself, compared in lower case like every name.
create index price_models_lower_id_idx on private.price_models (provider_id, lower(model_id));
comment on table private.price_models is 'genai-prices models; position is the order in which their rules are tried.';

-- Match rules in disjunctive normal form: a rule matches when every atom of one of its conjuncts
-- matches. genai-prices nests or/and freely; flattening lets equals and starts_with atoms be index
-- probes instead of walking a tree per name.
create table private.price_match_rules (
  id bigint generated always as identity primary key,
  scope text not null constraint scope_is_model_or_provider
    check (scope in ('model', 'provider_model', 'provider_name')),
  provider_id text not null,
  model_id text,
  position integer not null,
  conjunct integer not null,
  atoms integer not null constraint a_conjunct_has_at_least_one_atom check (atoms >= 1),
  kind text not null constraint kind_is_a_genai_prices_clause
    check (kind in ('equals', 'starts_with', 'ends_with', 'contains', 'regex')),
  pattern text not null,
  constraint only_model_rules_name_a_model check ((scope = 'model') = (model_id is not null))
);
alter table private.price_match_rules enable row level security;
create index price_match_rules_probe_idx on private.price_match_rules (scope, kind, pattern);
create index price_match_rules_scan_idx on private.price_match_rules (scope, provider_id, kind);
comment on table private.price_match_rules is
  'genai-prices match clauses as DNF atoms. scope model: a model''s names; provider_model: which provider a '
  'model name implies; provider_name: provider names as clients send them. Patterns are lower case except regex.';

-- Names genai-prices itself resolved at sync time, per provider: the common case becomes one probe,
-- and the rules stay the authority for every other name.
create table private.price_model_names (
  provider_id text not null,
  name text not null,
  model_provider_id text not null,
  model_id text not null,
  direct boolean not null,
  primary key (provider_id, name)
);
alter table private.price_model_names enable row level security;
comment on table private.price_model_names is
  'Resolution cache computed by genai-prices: (provider, lower-case name) -> model; direct = the provider''s own '
  'model. Holds model ids, equals patterns, and prefix/substring stems bare and with Bedrock''s -v1:0.';

-- ---------------------------------------------------------------- prices
-- One row is one price slot: a model, a service tier ('' = standard), the instant it takes effect,
-- a daily window (off-peak pricing) and a long-context threshold. The rows sharing provider, model,
-- tier and effective_from form a complete price set: every window of the day, every threshold.
-- A later set replaces an earlier one from its effective_from on; rows are never updated.
create table private.model_prices (
  id bigint generated always as identity primary key,
  provider_id text not null,
  model_id text not null,
  service_tier text not null default '',
  effective_from timestamptz not null default '-infinity',
  daily_from time not null default '00:00',
  daily_until time not null default '24:00',
  above_input_tokens bigint not null default -1,
  input_mtok numeric,
  cache_read_mtok numeric,
  cache_write_mtok numeric,
  output_mtok numeric,
  output_reasoning_mtok numeric,
  requests_kcount numeric,
  prices jsonb not null default '{}',
  source text not null default 'manual',
  recorded_at timestamptz not null default now(),
  constraint one_price_per_model_tier_instant_window_and_threshold
    unique (provider_id, model_id, service_tier, effective_from, daily_from, above_input_tokens),
  constraint daily_window_is_a_nonempty_part_of_the_day check (daily_from < daily_until),
  constraint threshold_is_minus_one_or_a_token_count check (above_input_tokens >= -1),
  constraint prices_are_not_negative check (
    coalesce(input_mtok, 0) >= 0 and coalesce(cache_read_mtok, 0) >= 0 and coalesce(cache_write_mtok, 0) >= 0
    and coalesce(output_mtok, 0) >= 0 and coalesce(output_reasoning_mtok, 0) >= 0
    and coalesce(requests_kcount, 0) >= 0)
);
alter table private.model_prices enable row level security;
comment on table private.model_prices is
  'Effective-dated prices (USD per million tokens, per thousand requests). A row applies to a call when its set is '
  'the latest with effective_from <= the call, the call''s UTC time of day is in [daily_from, daily_until) and its '
  'input tokens exceed above_input_tokens (long-context tiers are cliffs: the whole call pays the tier price).';
comment on column private.model_prices.prices is
  'The full genai-prices price set (every unit, tiers included) as decimal strings, for display and audit.';
comment on column private.model_prices.source is 'genai-prices <version> for synced rows; anything else is kept by sync.';

-- Prices are public knowledge: signed-in users may read them through public.model_prices.
create policy "signed-in users read prices" on private.model_prices for select to authenticated using (true);
create policy "signed-in users read models" on private.price_models for select to authenticated using (true);
revoke all on private.price_providers, private.price_models, private.price_match_rules,
  private.price_model_names, private.model_prices from public, anon, authenticated;
grant select on private.model_prices, private.price_models to authenticated;

create view public.model_prices with (security_invoker = true) as
  select p.id as price_id, p.provider_id, p.model_id, m.name as model_name, p.service_tier, p.effective_from,
         p.daily_from, p.daily_until, p.above_input_tokens, p.input_mtok, p.cache_read_mtok, p.cache_write_mtok,
         p.output_mtok, p.output_reasoning_mtok, p.requests_kcount, p.prices, p.source
    from private.model_prices p
    left join private.price_models m on m.provider_id = p.provider_id and m.model_id = p.model_id;
comment on view public.model_prices is 'Every price TokenTRA knows, with its history (read-only).';
grant select on public.model_prices to authenticated;

-- ---------------------------------------------------------------- name resolution
-- The per-event path (usage_cost, price_cost, resolve_price, find_price_model, price_provider) has no
-- `set search_path`: a SET clause stops the planner inlining a SQL function, and inlined these become
-- part of the caller's statement, planned once for a whole batch (Postgres 17 re-plans a nested SQL
-- function on every call of a non-inlined caller: 370 us per event instead of 30). Every name in
-- them is schema-qualified and none is security definer. match_price_rules, the slow path taken
-- only by names the sync-time cache lacks, is the opposite on purpose: not inlined, it keeps its own
-- plan and pinned search_path, and its small declared cost keeps a caller's estimate honest (inlined,
-- its branches made 1,000 events look like 250,000 cost units, past jit_above_cost, and JIT then
-- spent more time compiling than the whole batch took to price).

-- The first (provider, model) whose rule accepts subject, in genai-prices' order: providers in the
-- order given (a provider, then its fallbacks), models in their provider's order.
create function private.match_price_rules(scope text, provider_ids text[], subject text)
returns table (provider_id text, model_id text)
language sql stable parallel safe cost 10 rows 1 set search_path = '' as $$
  -- materialized: kept out of this CTE, the provider filter below probes equals and starts_with by
  -- pattern alone (a few index probes) instead of scanning every rule of the provider
  with atoms as materialized (
    select r.id, r.provider_id, r.model_id, r.position, r.conjunct, r.atoms
      from private.price_match_rules r
     where r.scope = match_price_rules.scope and r.kind = 'equals' and r.pattern = match_price_rules.subject
    union all
    -- a name's prefixes, the empty one included, turn starts_with into index probes
    select r.id, r.provider_id, r.model_id, r.position, r.conjunct, r.atoms
      from private.price_match_rules r
     where r.scope = match_price_rules.scope and r.kind = 'starts_with'
       and r.pattern = any (array(select left(match_price_rules.subject, n)
                                    from pg_catalog.generate_series(0, length(match_price_rules.subject)) n))
    union all
    -- the other kinds are few per provider; they are scanned, for the providers asked about (two
    -- branches rather than `is null or`, which would keep the provider out of the index condition)
    select r.id, r.provider_id, r.model_id, r.position, r.conjunct, r.atoms
      from private.price_match_rules r
     where match_price_rules.provider_ids is null
       and r.scope = match_price_rules.scope and r.kind in ('ends_with', 'contains', 'regex')
       and case r.kind
             when 'ends_with' then right(match_price_rules.subject, length(r.pattern)) = r.pattern
             when 'contains' then strpos(match_price_rules.subject, r.pattern) > 0
             else match_price_rules.subject ~ r.pattern
           end
    union all
    select r.id, r.provider_id, r.model_id, r.position, r.conjunct, r.atoms
      from private.price_match_rules r
     where r.scope = match_price_rules.scope and r.provider_id = any (match_price_rules.provider_ids)
       and r.kind in ('ends_with', 'contains', 'regex')
       and case r.kind
             when 'ends_with' then right(match_price_rules.subject, length(r.pattern)) = r.pattern
             when 'contains' then strpos(match_price_rules.subject, r.pattern) > 0
             else match_price_rules.subject ~ r.pattern
           end
  )
  select a.provider_id, a.model_id
    from atoms a
   where match_price_rules.provider_ids is null or a.provider_id = any (match_price_rules.provider_ids)
   group by a.provider_id, a.model_id, a.position, a.conjunct, a.atoms
  having count(distinct a.id) = a.atoms
   order by coalesce(array_position(match_price_rules.provider_ids, a.provider_id), 1), a.position
   limit 1
$$;
comment on function private.match_price_rules(text, text[], text) is
  'First (provider, model) of scope whose genai-prices rule accepts subject (lower case), in genai-prices order; '
  'provider_ids null = all providers.';

-- Provider ids as clients send them: the id itself, else the first provider_match rule that accepts it.
-- A set-returning function rather than a scalar one: only those are inlined when they hold sub-selects.
create function private.price_provider(name text)
returns table (provider_id text)
language sql stable parallel safe rows 1 as $$
  select x.provider_id from (
    (select p.provider_id from private.price_providers p where p.provider_id = price_provider.name)
    union all
    (select m.provider_id from private.match_price_rules('provider_name', null, price_provider.name) m)
  ) x
  limit 1
$$;
comment on function private.price_provider(text) is
  'genai-prices provider id for a provider name (lower case, trimmed): exact id, else its provider_match rules.';

-- LiteLLM and OpenRouter send compact dates (gpt-5.2-20251211); genai-prices retries such names with
-- the dashed form, rewriting only real calendar dates. Called only after a name failed as sent.
create function private.normalize_compact_dates(ref text) returns text
language plpgsql immutable strict parallel safe set search_path = '' as $$
declare
  pattern constant text := '-(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)';
  rest text := ref;
  done text := '';
  at_ integer;
  m text[];
begin
  loop
    at_ := regexp_instr(rest, pattern);
    exit when at_ = 0;
    m := regexp_match(substr(rest, at_), pattern);
    done := done || left(rest, at_ - 1) || case
      when m[3]::integer <= extract(day from make_date(m[1]::integer, m[2]::integer, 1) + interval '1 month - 1 day')
        then '-' || m[1] || '-' || m[2] || '-' || m[3]
      else substr(rest, at_, 9) end;
    rest := substr(rest, at_ + 9);
  end loop;
  return done || rest;
end
$$;
comment on function private.normalize_compact_dates(text) is
  'Rewrite -YYYYMMDD date suffixes (valid dates only) to -YYYY-MM-DD, as genai-prices does before a second try.';

-- A model within one provider: the sync-time cache, then the rules (the provider's own models, then
-- its fallback providers'; the name as sent, then with compact dates rewritten), then the bare model id.
create function private.find_price_model(provider_id text, ref text)
returns table (provider_id text, model_id text, direct boolean)
language sql stable parallel safe rows 1 as $$
  select f.provider_id, f.model_id, f.direct from (
    (select n.model_provider_id as provider_id, n.model_id, n.direct
       from private.price_model_names n
      where n.provider_id = find_price_model.provider_id and n.name = find_price_model.ref)
    union all
    (select r.provider_id, r.model_id, r.provider_id = p.provider_id
       from private.price_providers p
      cross join lateral (
        select find_price_model.ref as name
        union all
        select d.name from (select private.normalize_compact_dates(find_price_model.ref) as name) d
         where d.name <> find_price_model.ref) t
      cross join lateral private.match_price_rules(
        'model', array_prepend(p.provider_id, p.fallback_provider_ids), t.name) r
      where p.provider_id = find_price_model.provider_id)
    union all
    (select m.provider_id, m.model_id, true
       from private.price_models m
      where m.provider_id = find_price_model.provider_id and lower(m.model_id) = find_price_model.ref)
  ) f
  limit 1
$$;
comment on function private.find_price_model(text, text) is
  'The model a lower-case name denotes at one provider, in genai-prices order (own models, fallbacks, '
  'compact dates rewritten), else the model whose id is the name. direct = the provider''s own model.';

-- The whole resolution: attempts in order, each tried only when the ones before it found nothing.
create function private.resolve_price(provider text, model text)
returns table (provider_id text, model_id text, direct boolean)
language sql stable parallel safe rows 1 as $$
  select f.provider_id, f.model_id, f.direct and a.direct
    from (select lower(resolve_price.model) as ref,
                 lower(btrim(resolve_price.provider, E' \t\n\r\f' || chr(11))) as name,
                 strpos(lower(resolve_price.model), '/') as slash) s
    left join lateral private.price_provider(s.name) sent on true
   cross join lateral (
     -- 1. litellm names the provider in the model's prefix (genai-prices does this first)
     select q.provider_id, substr(s.ref, s.slash + 1) as ref, true as direct
       from private.price_provider(left(s.ref, s.slash - 1)) q
      where s.name = 'litellm' and s.slash > 1
     union all
     -- 2. the provider as sent, by id or by its provider_match rules
     select sent.provider_id, s.ref, true where sent.provider_id is not null
     union all
     -- 3. no provider, or one genai-prices does not know: the provider the model name implies
     select g.provider_id, s.ref, true
       from private.match_price_rules('provider_model', null, s.ref) g
      where sent.provider_id is null
     union all
     -- 4. a provider prefix in the model name: openai/gpt-4o, anthropic/claude-...
     select q.provider_id, substr(s.ref, s.slash + 1), true
       from private.price_provider(left(s.ref, s.slash - 1)) q
      where s.slash > 1
     union all
     -- 5. a gateway sent its own name for another provider's model: that provider's standard price
     select g.provider_id, s.ref, false
       from private.match_price_rules('provider_model', null, s.ref) g
      where sent.provider_id is not null and g.provider_id <> sent.provider_id
   ) a
   cross join lateral private.find_price_model(a.provider_id, a.ref) f
   limit 1
$$;
comment on function private.resolve_price(text, text) is
  'Resolve a (provider, model) pair as sent to the genai-prices model priced for it; direct = service-tier '
  'variants apply (genai-prices ignores them for a model found through a fallback provider).';

create function private.resolve_price_model(provider text, model text)
returns table (provider_id text, model_id text)
language sql stable parallel safe rows 1 set search_path = '' as $$
  select r.provider_id, r.model_id from private.resolve_price(resolve_price_model.provider, resolve_price_model.model) r
$$;
comment on function private.resolve_price_model(text, text) is
  'The genai-prices (provider_id, model_id) whose prices apply to a call sent as (provider, model); no row if unknown.';

-- ---------------------------------------------------------------- cost
-- The cost of a call to a resolved model. genai-prices' arithmetic: each priced unit is billed on
-- its own tokens only, so cache reads/writes leave the input price, and reasoning the output price,
-- only where they have a price of their own. Multiplying by 0.000001 rather than dividing keeps
-- numeric exact. Inlinable (no SET clause, see name resolution) for the same per-event reason.
create function private.price_cost(
  provider_id text, model_id text, direct boolean, at timestamptz, input_tokens bigint, output_tokens bigint,
  cached_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint, service_tier text)
returns table (price_id bigint, price_model text, cost_usd numeric)
language sql stable parallel safe rows 1 as $$
  select p.id, price_cost.provider_id || '/' || price_cost.model_id,
         (coalesce(p.input_mtok, 0) * (c.inp - case when p.cache_read_mtok is null then 0 else c.cr end
                                             - case when p.cache_write_mtok is null then 0 else c.cw end)
          + coalesce(p.cache_read_mtok, 0) * c.cr
          + coalesce(p.cache_write_mtok, 0) * c.cw
          + coalesce(p.output_mtok, 0) * (c.outp - case when p.output_reasoning_mtok is null then 0 else c.rs end)
          + coalesce(p.output_reasoning_mtok, 0) * c.rs) * 0.000001
         + coalesce(p.requests_kcount, 0) * 0.001
    from (select coalesce(price_cost.at, now()) as at,
                 (coalesce(price_cost.at, now()) at time zone 'UTC')::time as day_time,
                 coalesce(price_cost.input_tokens, 0) as inp, coalesce(price_cost.output_tokens, 0) as outp,
                 coalesce(price_cost.cached_tokens, 0) as cr, coalesce(price_cost.cache_write_tokens, 0) as cw,
                 coalesce(price_cost.reasoning_tokens, 0) as rs,
                 nullif(lower(btrim(price_cost.service_tier)), '') as tier) c
   cross join lateral (
     select q.* from (
       -- the service tier's own prices, where genai-prices has them for the provider's own model
       (select q.* from private.model_prices q
         where q.provider_id = price_cost.provider_id and q.model_id = price_cost.model_id
           and price_cost.direct and q.service_tier = c.tier
           and q.effective_from <= c.at and q.daily_from <= c.day_time and q.daily_until > c.day_time
           and q.above_input_tokens < c.inp
         order by q.effective_from desc, q.daily_from desc, q.above_input_tokens desc
         limit 1)
       union all
       (select q.* from private.model_prices q
         where q.provider_id = price_cost.provider_id and q.model_id = price_cost.model_id and q.service_tier = ''
           and q.effective_from <= c.at and q.daily_from <= c.day_time and q.daily_until > c.day_time
           and q.above_input_tokens < c.inp
         order by q.effective_from desc, q.daily_from desc, q.above_input_tokens desc
         limit 1)
     ) q
     limit 1
   ) p
$$;
comment on function private.price_cost(text, text, boolean, timestamptz, bigint, bigint, bigint, bigint, bigint, text) is
  'Cost in USD of one call to a resolved genai-prices model (see usage_cost), from the price effective at `at`.';

-- The per-event entry point of ingest. No SET clause, so the planner inlines it (and everything it
-- calls but match_price_rules) into the caller's statement; see name resolution.
create function private.usage_cost(
  provider text, model text, at timestamptz, input_tokens bigint, output_tokens bigint, cached_tokens bigint,
  cache_write_tokens bigint, reasoning_tokens bigint, service_tier text default null)
returns table (price_id bigint, price_model text, cost_usd numeric)
language sql stable parallel safe rows 1 as $$
  select c.price_id, c.price_model, c.cost_usd
    from private.resolve_price(usage_cost.provider, usage_cost.model) r
   cross join lateral private.price_cost(
     r.provider_id, r.model_id, r.direct, usage_cost.at, usage_cost.input_tokens, usage_cost.output_tokens,
     usage_cost.cached_tokens, usage_cost.cache_write_tokens, usage_cost.reasoning_tokens, usage_cost.service_tier) c
$$;
comment on function private.usage_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) is
  'Cost in USD of one call, from the price effective at `at`: input_tokens include cache reads/writes, '
  'output_tokens include reasoning. No row when the model is unknown. service_tier selects genai-prices '
  'variants (service_tier=..., and ''batch'' for processing=batch).';

revoke all on function private.match_price_rules(text, text[], text), private.price_provider(text),
  private.normalize_compact_dates(text), private.find_price_model(text, text), private.resolve_price(text, text),
  private.resolve_price_model(text, text),
  private.price_cost(text, text, boolean, timestamptz, bigint, bigint, bigint, bigint, bigint, text),
  private.usage_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) from public;
-- Ingest and re-pricing run as the service role; users read prices through public.model_prices.
grant execute on function private.match_price_rules(text, text[], text), private.price_provider(text),
  private.normalize_compact_dates(text), private.find_price_model(text, text), private.resolve_price(text, text),
  private.resolve_price_model(text, text),
  private.price_cost(text, text, boolean, timestamptz, bigint, bigint, bigint, bigint, bigint, text),
  private.usage_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) to service_role;
