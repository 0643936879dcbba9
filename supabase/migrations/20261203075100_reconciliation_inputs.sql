-- Reconciliation inputs: both sides brought to one shape, a "class" of tokens per UTC day, provider and
-- canonical model: token category (input = uncached input, cached, cache_write, output), service tier
-- (standard, batch, flex, priority) and context window (short, long). Ours come from usage_records, theirs
-- from the provider's usage and cost reports (private.provider_billed_*_daily). The cause rules
-- (20261203075200) read nothing else.

-- ---------------------------------------------------------------- names shared by both sides
-- A service tier as the reconciliation compares it. OpenAI reports batch as a flag beside its tier,
-- Anthropic as a tier; scale is OpenAI's older name for priority.
create function private.reconciliation_tier(service_tier text, batch boolean default null) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
           when reconciliation_tier.batch or lower(btrim(reconciliation_tier.service_tier)) = 'batch' then 'batch'
           when lower(btrim(reconciliation_tier.service_tier)) = 'flex' then 'flex'
           when lower(btrim(reconciliation_tier.service_tier)) in ('priority', 'scale') then 'priority'
           else 'standard'
         end
$$;
comment on function private.reconciliation_tier(text, boolean) is
  'standard, batch, flex or priority: a service tier (and OpenAI''s batch flag) as the reconciliation compares it.';

-- The token category a billed cost line charges, from Anthropic's token_type or the kind in an OpenAI
-- line item ("gpt-4o-2024-08-06, cached input"); null when it names none.
create function private.reconciliation_token_category(token_type text, line_item text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
           when t ~ 'uncached' then 'input'
           when t ~ '(cache_read|cached|cache read)' then 'cached'
           when t ~ '(cache_creation|cache_write|cache write|cache creation)' then 'cache_write'
           when t ~ 'output' then 'output'
           when t ~ 'input' then 'input'
         end
    from (select lower(coalesce(reconciliation_token_category.token_type,
                                split_part(reconciliation_token_category.line_item, ',', 2), '')) as t) x
$$;
comment on function private.reconciliation_token_category(text, text) is
  'input, cached, cache_write or output: the tokens a billed cost line charges; null when it does not say.';

-- Anthropic's context windows are 0-200k and 200k-1M: anything not starting at 0 is the long window.
create function private.reconciliation_context(context_window text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case when reconciliation_context.context_window is null
                or btrim(reconciliation_context.context_window) ~ '^0' then 'short' else 'long' end
$$;
comment on function private.reconciliation_context(text) is 'short or long: a provider''s context window tier.';

-- Where the providers' long-context window starts (input tokens of a call, cache included).
create function private.reconciliation_long_context_tokens() returns bigint
language sql immutable parallel safe set search_path = '' as $$ select 200000::bigint $$;
comment on function private.reconciliation_long_context_tokens() is
  'Input tokens (cache included) above which a call is in the providers'' long-context window.';

-- ---------------------------------------------------------------- our unit prices
-- Our price per token of each category for a class, from the organization's price table as ingest would
-- price a call at noon of the day: differences of whole calls, so a per-request fee cancels out, and calls
-- of `size` input tokens, so a long-context tier applies exactly when the class is long. Null: unpriced.
create function private.reconciliation_our_prices(org uuid, provider text, model text, day date, tier text,
                                                  long boolean)
returns table (input numeric, cached numeric, cache_write numeric, output numeric)
language sql stable set search_path = '' as $$
  with a as (
    select (reconciliation_our_prices.day + time '12:00') at time zone 'UTC' as at,
           case when reconciliation_our_prices.long then 1000000 else 1000 end::bigint as size,
           nullif(reconciliation_our_prices.tier, 'standard') as tier
  ), c as (
    select a.size,
           (select x.cost_usd from private.org_usage_cost(reconciliation_our_prices.org, reconciliation_our_prices.provider,
                   reconciliation_our_prices.model, a.at, a.size, 0, 0, 0, 0, a.tier) x) as base,
           (select x.cost_usd from private.org_usage_cost(reconciliation_our_prices.org, reconciliation_our_prices.provider,
                   reconciliation_our_prices.model, a.at, 2 * a.size, 0, 0, 0, 0, a.tier) x) as more_input,
           (select x.cost_usd from private.org_usage_cost(reconciliation_our_prices.org, reconciliation_our_prices.provider,
                   reconciliation_our_prices.model, a.at, 2 * a.size, 0, a.size, 0, 0, a.tier) x) as more_cached,
           (select x.cost_usd from private.org_usage_cost(reconciliation_our_prices.org, reconciliation_our_prices.provider,
                   reconciliation_our_prices.model, a.at, 2 * a.size, 0, 0, a.size, 0, a.tier) x) as more_written,
           (select x.cost_usd from private.org_usage_cost(reconciliation_our_prices.org, reconciliation_our_prices.provider,
                   reconciliation_our_prices.model, a.at, a.size, a.size, 0, 0, 0, a.tier) x) as more_output
      from a
  )
  select (c.more_input - c.base) / c.size, (c.more_cached - c.base) / c.size, (c.more_written - c.base) / c.size,
         (c.more_output - c.base) / c.size
    from c
   where c.base is not null
$$;
comment on function private.reconciliation_our_prices(uuid, text, text, date, text, boolean) is
  'Our USD per token of input, cached, cache_write and output for a model, day, tier and context window (the '
  'organization''s own price first, as ingest prices); no row when the model is unpriced.';

-- ---------------------------------------------------------------- the days a provider's reports cover
-- A day is reconciled once every report endpoint of the provider's connections has synced past its end;
-- a provider with no sync state at all (rows written by hand) counts as covered.
create function private.reconciliation_covered_through(org uuid, provider text) returns date
language sql stable set search_path = '' as $$
  select case when count(*) = 0 then 'infinity'::date
              when bool_or(s.synced_through is null) then '-infinity'::date
              else (min(s.synced_through) at time zone 'UTC')::date end
    from private.provider_sync_state s
    join public.provider_connections c on c.id = s.connection_id
   where s.org_id = reconciliation_covered_through.org and c.provider = reconciliation_covered_through.provider
$$;
comment on function private.reconciliation_covered_through(uuid, text) is
  'The first UTC day the provider''s reports of org do not cover completely (days before it are reconciled).';

revoke all on function private.reconciliation_tier(text, boolean), private.reconciliation_token_category(text, text),
  private.reconciliation_context(text), private.reconciliation_long_context_tokens(),
  private.reconciliation_our_prices(uuid, text, text, date, text, boolean),
  private.reconciliation_covered_through(uuid, text) from public;
grant execute on function private.reconciliation_tier(text, boolean), private.reconciliation_token_category(text, text),
  private.reconciliation_context(text), private.reconciliation_long_context_tokens(),
  private.reconciliation_our_prices(uuid, text, text, date, text, boolean),
  private.reconciliation_covered_through(uuid, text) to service_role;
