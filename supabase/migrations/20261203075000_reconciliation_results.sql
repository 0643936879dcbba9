-- Reconciliation results: per UTC day, provider and canonical model, what we tracked (usage_records, priced
-- by our price table) beside what the provider reported and billed (its admin usage and cost reports), and
-- the gap between the two costs split into causes from one fixed list. The reconciliation job rewrites an
-- organization's rows for the days it re-reads; members read them like usage (usage.read), analysts through
-- analytics.reconciliation_daily.

-- ---------------------------------------------------------------- the causes
-- A fixed list: every gap amount is booked to exactly one of these, and the amounts of a day add up to its
-- gap. `ours` marks the causes a price set by the organization fixes (the one-click re-price).
create table private.reconciliation_cause_kinds (
  cause text primary key,
  position integer not null constraint causes_have_distinct_positions unique,
  ours boolean not null,
  definition text not null
);
alter table private.reconciliation_cause_kinds enable row level security;
create policy "signed-in users read the cause list" on private.reconciliation_cause_kinds
  for select to authenticated using (true);
create policy "analysts read the cause list" on private.reconciliation_cause_kinds
  for select to tokentra_analyst using (true);
revoke all on private.reconciliation_cause_kinds from public, anon, authenticated;
grant select on private.reconciliation_cause_kinds to authenticated, tokentra_analyst;
comment on table private.reconciliation_cause_kinds is
  'The fixed list of reconciliation causes, in display order, with the rule that computes each.';

insert into private.reconciliation_cause_kinds (cause, position, ours, definition) values
  ('untracked_traffic', 1, false,
   'Billed tokens beyond what we tracked for the day, provider and model once every other cause is accounted for, '
   'valued at the provider''s billed unit prices; named by the provider''s API keys or projects whose billed '
   'amounts best make it up.'),
  ('unpriced_model', 2, true,
   'Tokens we tracked for a model our price table cannot price (cost unknown), valued at the provider''s billed '
   'unit prices.'),
  ('price_change', 3, true,
   'Our effective-dated price per token differs from what the provider billed per token for the same tokens '
   '(input and output, or every category at once): a price change not yet synced, or a wrong price.'),
  ('cache_accounting', 4, false,
   'Our cache-read and cache-write token counts split the input differently from the provider''s (re-split by '
   'its shares), or only the cache prices differ while input and output prices agree.'),
  ('batch_flex_discount', 5, false,
   'Tokens the provider billed in another service tier (batch, flex, priority) than we recorded them in, '
   'valued at the two tiers'' billed prices, or a tier''s price differing while the standard price agrees.'),
  ('long_context', 6, false,
   'Tokens the provider billed in its long-context window that we recorded below the threshold, or a '
   'long-context premium our price table does not apply.'),
  ('tool_fees', 7, false,
   'Billed web-search and code-execution fees: server tools we do not price per call.'),
  ('rounding', 8, false,
   'Billed lines within half a cent of our price for the same tokens, and our stored costs'' rounding.'),
  ('timing', 9, false,
   'A volume gap on one day offset by the opposite gap on the day before or after (calls near midnight '
   'bucketed on different days).'),
  ('unexplained', 10, false,
   'What no rule explains: tracked tokens the provider did not bill, cost lines of other kinds, billed cost '
   'without tokens. Shown as such, never spread over the other causes.');

-- ---------------------------------------------------------------- per day, provider and model
create table private.reconciliation_daily (
  org_id uuid not null references public.organizations (id) on delete cascade,
  day date not null,
  provider text not null,
  canonical_model text,
  tracked_requests bigint not null default 0,
  tracked_unpriced_requests bigint not null default 0,
  tracked_input_tokens bigint not null default 0,
  tracked_cached_tokens bigint not null default 0,
  tracked_cache_write_tokens bigint not null default 0,
  tracked_output_tokens bigint not null default 0,
  tracked_reasoning_tokens bigint not null default 0,
  tracked_batch_tokens bigint not null default 0,
  tracked_cost_usd numeric not null default 0,
  billed_requests bigint not null default 0,
  billed_input_tokens bigint not null default 0,
  billed_cached_tokens bigint not null default 0,
  billed_cache_write_tokens bigint not null default 0,
  billed_output_tokens bigint not null default 0,
  billed_reasoning_tokens bigint,
  billed_batch_tokens bigint not null default 0,
  billed_web_search_requests bigint not null default 0,
  billed_cost_usd numeric not null default 0,
  gap_usd numeric not null default 0,
  our_prices jsonb not null default '{}',
  billed_prices jsonb not null default '{}',
  reconciled_at timestamptz not null default now(),
  constraint one_row_per_day_provider_and_model unique nulls not distinct (org_id, day, provider, canonical_model)
);
comment on table private.reconciliation_daily is
  'Tracked against billed per UTC day, provider and canonical model; gap_usd = billed_cost_usd - tracked_cost_usd.';
comment on column private.reconciliation_daily.canonical_model is
  'The canonical model (usage_records.canonical_model); null for billed lines that are not per model (tool fees).';
comment on column private.reconciliation_daily.tracked_input_tokens is 'Our uncached input tokens (input minus cache reads and writes).';
comment on column private.reconciliation_daily.tracked_batch_tokens is 'Our tokens recorded in the batch tier.';
comment on column private.reconciliation_daily.tracked_cost_usd is 'Our cost of the day''s calls (unpriced calls count zero).';
comment on column private.reconciliation_daily.billed_input_tokens is 'The provider''s uncached input tokens.';
comment on column private.reconciliation_daily.billed_batch_tokens is 'Tokens the provider billed in the batch tier.';
comment on column private.reconciliation_daily.billed_reasoning_tokens is 'Reasoning tokens; null when the provider does not report them.';
comment on column private.reconciliation_daily.billed_cost_usd is 'Everything the provider billed for the day and model, fees included.';
comment on column private.reconciliation_daily.our_prices is
  'Our standard-tier price in USD per million tokens (input, cached, cache_write, output) for the day.';
comment on column private.reconciliation_daily.billed_prices is
  'The provider''s standard-tier price in USD per million tokens as billed (cost / tokens) for the day.';
create index reconciliation_daily_org_day_idx on private.reconciliation_daily (org_id, day);

create table private.reconciliation_causes (
  org_id uuid not null references public.organizations (id) on delete cascade,
  day date not null,
  provider text not null,
  canonical_model text,
  cause text not null references private.reconciliation_cause_kinds (cause),
  amount_usd numeric not null,
  details jsonb not null default '{}',
  constraint one_amount_per_day_provider_model_and_cause
    unique nulls not distinct (org_id, day, provider, canonical_model, cause)
);
comment on table private.reconciliation_causes is
  'The gap of a reconciliation_daily row split by cause; the amounts of a row add up to its gap_usd. Positive: '
  'billed more than we tracked.';
comment on column private.reconciliation_causes.details is
  'What the rule saw: tokens moved, prices compared, or for untracked traffic the keys or projects named.';
create index reconciliation_causes_org_day_idx on private.reconciliation_causes (org_id, day);

-- Members who read usage read its reconciliation; analysts their organization's. Only the service writes.
alter table private.reconciliation_daily enable row level security;
alter table private.reconciliation_causes enable row level security;
create policy "members with usage.read read their organizations' reconciliation" on private.reconciliation_daily
  for select to authenticated using (org_id = any ((select private.org_ids_with('usage.read'))::uuid[]));
create policy "members with usage.read read their organizations' gap causes" on private.reconciliation_causes
  for select to authenticated using (org_id = any ((select private.org_ids_with('usage.read'))::uuid[]));
create policy "analysts read their organization's reconciliation" on private.reconciliation_daily
  for select to tokentra_analyst using (org_id = any ((select private.analyst_org_ids())::uuid[]));
create policy "analysts read their organization's gap causes" on private.reconciliation_causes
  for select to tokentra_analyst using (org_id = any ((select private.analyst_org_ids())::uuid[]));
revoke all on private.reconciliation_daily, private.reconciliation_causes from public, anon, authenticated;
grant select on private.reconciliation_daily, private.reconciliation_causes to authenticated, tokentra_analyst;

-- ---------------------------------------------------------------- the analysts' view
create view analytics.reconciliation_daily with (security_invoker = true) as
  select d.org_id, d.day, d.provider, d.canonical_model, c.cause, k.position as cause_position, k.ours,
         c.amount_usd, c.details, d.tracked_cost_usd, d.billed_cost_usd, d.gap_usd
    from private.reconciliation_daily d
    join private.reconciliation_causes c
      on c.org_id = d.org_id and c.day = d.day and c.provider = d.provider
     and c.canonical_model is not distinct from d.canonical_model
    join private.reconciliation_cause_kinds k on k.cause = c.cause;
comment on view analytics.reconciliation_daily is
  'Provider reconciliation: one row per UTC day, provider, canonical model and gap cause; amounts of a day, '
  'provider and model add up to its gap_usd.';
comment on column analytics.reconciliation_daily.org_id is 'The organization.';
comment on column analytics.reconciliation_daily.day is 'The UTC day.';
comment on column analytics.reconciliation_daily.provider is 'openai or anthropic.';
comment on column analytics.reconciliation_daily.canonical_model is
  'The canonical model (as usage_records.canonical_model); null for billed lines not per model.';
comment on column analytics.reconciliation_daily.cause is 'One of the fixed causes (private.reconciliation_cause_kinds).';
comment on column analytics.reconciliation_daily.cause_position is 'The cause''s display order.';
comment on column analytics.reconciliation_daily.ours is 'True when a price set by the organization fixes the cause.';
comment on column analytics.reconciliation_daily.amount_usd is 'The part of the gap this cause explains (USD; positive = billed more).';
comment on column analytics.reconciliation_daily.details is 'What the rule saw (tokens moved, prices, keys or projects named).';
comment on column analytics.reconciliation_daily.tracked_cost_usd is 'Our cost for the day, provider and model.';
comment on column analytics.reconciliation_daily.billed_cost_usd is 'The provider''s billed cost for the day, provider and model.';
comment on column analytics.reconciliation_daily.gap_usd is 'billed_cost_usd - tracked_cost_usd.';
grant select on analytics.reconciliation_daily to authenticated, tokentra_analyst, service_role;
