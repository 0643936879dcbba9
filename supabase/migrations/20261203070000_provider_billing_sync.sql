-- What the providers themselves report and bill, pulled from their admin usage and cost APIs by the
-- worker's reconciliation job: the raw pages as fetched (audit), the buckets normalized to one shape for
-- both providers, the sync's cursor per connection and endpoint (a crash mid-pagination resumes where it
-- stopped), and two daily views the reconciliation reads. All of it is service only: an organization's
-- provider-side figures include projects, keys and workspaces its members may not see through TokenTRA.

-- ---------------------------------------------------------------- sync state
create table private.provider_sync_state (
  connection_id uuid not null references public.provider_connections (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  endpoint text not null constraint endpoint_is_known check (endpoint in (
    'organization/usage/completions', 'organization/usage/embeddings', 'organization/costs',
    'organizations/usage_report/messages', 'organizations/cost_report')),
  synced_through timestamptz,
  window_start timestamptz,
  window_end timestamptz,
  sync_id uuid,
  next_page text,
  pages_in_window integer not null default 0,
  last_attempt_at timestamptz,
  last_success_at timestamptz,
  last_error text,
  last_error_at timestamptz,
  consecutive_failures integer not null default 0,
  updated_at timestamptz not null default now(),
  primary key (connection_id, endpoint),
  constraint window_is_whole check ((window_start is null) = (window_end is null) and (window_start is null) = (sync_id is null)),
  constraint window_is_ordered check (window_end > window_start)
);
comment on table private.provider_sync_state is
  'Per provider connection and admin endpoint: how far the usage and cost reports are synced, and the cursor of a window in progress.';
comment on column private.provider_sync_state.connection_id is 'The provider connection whose admin key reads the reports.';
comment on column private.provider_sync_state.org_id is 'The organization of the connection.';
comment on column private.provider_sync_state.endpoint is 'The admin API path after /v1/ (organization/costs, organizations/cost_report, ...).';
comment on column private.provider_sync_state.synced_through is
  'End of the last window synced completely; null until the first backfill finishes.';
comment on column private.provider_sync_state.window_start is 'Start of the window being synced (null when none is in progress).';
comment on column private.provider_sync_state.window_end is 'End (exclusive) of the window being synced.';
comment on column private.provider_sync_state.sync_id is
  'Marks the rows written by the window in progress; rows of the window without it are removed when it completes.';
comment on column private.provider_sync_state.next_page is
  'The provider''s page cursor to fetch next in the window in progress (null: its first page).';
comment on column private.provider_sync_state.pages_in_window is 'Pages of the window in progress stored so far.';
comment on column private.provider_sync_state.last_attempt_at is 'When the sync last tried this endpoint.';
comment on column private.provider_sync_state.last_success_at is 'When a window of this endpoint last completed.';
comment on column private.provider_sync_state.last_error is
  'The last failure, as the provider stated it (status and message; never the key); null after a success.';
comment on column private.provider_sync_state.last_error_at is 'When last_error happened.';
comment on column private.provider_sync_state.consecutive_failures is 'Failed attempts since the last success.';
comment on column private.provider_sync_state.updated_at is 'When the row last changed.';
create trigger touch_updated_at before update on private.provider_sync_state
  for each row execute function private.touch_updated_at();
alter table private.provider_sync_state enable row level security;
create index provider_sync_state_org_idx on private.provider_sync_state (org_id);

-- ---------------------------------------------------------------- raw pages (audit)
create table private.provider_report_pages (
  id bigint generated always as identity primary key,
  org_id uuid not null references public.organizations (id) on delete cascade,
  connection_id uuid not null references public.provider_connections (id) on delete cascade,
  endpoint text not null,
  params jsonb not null,
  page_cursor text,
  next_page text,
  has_more boolean not null,
  sync_id uuid not null,
  fetched_at timestamptz not null default now(),
  body jsonb not null
);
comment on table private.provider_report_pages is
  'Every page of a provider usage or cost report as fetched, kept for audit (the normalized rows derive from these).';
comment on column private.provider_report_pages.id is 'Row id.';
comment on column private.provider_report_pages.org_id is 'The organization of the connection.';
comment on column private.provider_report_pages.connection_id is 'The provider connection the page was read with.';
comment on column private.provider_report_pages.endpoint is 'The admin API path after /v1/.';
comment on column private.provider_report_pages.params is 'The query parameters sent (without the page cursor).';
comment on column private.provider_report_pages.page_cursor is 'The page cursor sent (null for a window''s first page).';
comment on column private.provider_report_pages.next_page is 'The next_page the provider answered (null on the last page).';
comment on column private.provider_report_pages.has_more is 'The provider''s has_more.';
comment on column private.provider_report_pages.sync_id is 'The window sync the page belongs to (see provider_sync_state.sync_id).';
comment on column private.provider_report_pages.fetched_at is 'When the page was fetched.';
comment on column private.provider_report_pages.body is 'The response body, unchanged.';
alter table private.provider_report_pages enable row level security;
create index provider_report_pages_connection_idx on private.provider_report_pages (connection_id, endpoint, fetched_at desc);
create index provider_report_pages_org_idx on private.provider_report_pages (org_id);
create index provider_report_pages_fetched_idx on private.provider_report_pages (fetched_at);

-- ---------------------------------------------------------------- normalized usage buckets
create table private.provider_billed_usage (
  id bigint generated always as identity primary key,
  org_id uuid not null references public.organizations (id) on delete cascade,
  connection_id uuid not null references public.provider_connections (id) on delete cascade,
  provider text not null constraint provider_is_known check (provider in ('openai', 'anthropic')),
  endpoint text not null,
  bucket_start timestamptz not null,
  bucket_end timestamptz not null,
  bucket_width text not null constraint bucket_width_is_known check (bucket_width in ('1m', '1h', '1d')),
  model text,
  project_id text,
  api_key_id text,
  service_tier text,
  batch boolean,
  context_window text,
  input_tokens bigint not null default 0,
  cached_input_tokens bigint not null default 0,
  cache_write_tokens bigint not null default 0,
  cache_write_5m_tokens bigint not null default 0,
  cache_write_1h_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  reasoning_tokens bigint,
  input_audio_tokens bigint not null default 0,
  output_audio_tokens bigint not null default 0,
  requests bigint,
  web_search_requests bigint not null default 0,
  sync_id uuid not null,
  synced_at timestamptz not null default now(),
  constraint provider_billed_usage_natural_key unique nulls not distinct
    (connection_id, endpoint, bucket_width, bucket_start, model, project_id, api_key_id, service_tier, batch,
     context_window),
  constraint bucket_is_ordered check (bucket_end > bucket_start),
  constraint counts_are_not_negative check (
    input_tokens >= 0 and cached_input_tokens >= 0 and cache_write_tokens >= 0 and cache_write_5m_tokens >= 0
    and cache_write_1h_tokens >= 0 and output_tokens >= 0 and coalesce(reasoning_tokens, 0) >= 0
    and input_audio_tokens >= 0 and output_audio_tokens >= 0 and coalesce(requests, 0) >= 0
    and web_search_requests >= 0),
  constraint cache_writes_cover_their_ttls check (cache_write_tokens >= cache_write_5m_tokens + cache_write_1h_tokens)
);
comment on table private.provider_billed_usage is
  'Token usage as a provider reports it, one row per report bucket and grouping; a re-sync of a bucket replaces its rows.';
comment on column private.provider_billed_usage.id is 'Row id.';
comment on column private.provider_billed_usage.org_id is 'The organization of the connection.';
comment on column private.provider_billed_usage.connection_id is 'The provider connection the report was read with.';
comment on column private.provider_billed_usage.provider is 'openai or anthropic.';
comment on column private.provider_billed_usage.endpoint is 'The admin API path the bucket came from (completions, embeddings, messages).';
comment on column private.provider_billed_usage.bucket_start is 'Start of the report bucket (UTC).';
comment on column private.provider_billed_usage.bucket_end is 'End of the report bucket (exclusive).';
comment on column private.provider_billed_usage.bucket_width is 'The bucket width asked for: 1m, 1h or 1d.';
comment on column private.provider_billed_usage.model is 'The model as the provider reports it.';
comment on column private.provider_billed_usage.project_id is 'OpenAI project or Anthropic workspace; null when not broken down.';
comment on column private.provider_billed_usage.api_key_id is 'The provider''s API key id; null when not broken down.';
comment on column private.provider_billed_usage.service_tier is 'The provider''s service tier (default, flex, scale, priority, standard, batch, ...).';
comment on column private.provider_billed_usage.batch is 'OpenAI: whether the usage came from the Batch API; null when not reported.';
comment on column private.provider_billed_usage.context_window is 'Anthropic: the context window tier (0-200k, 200k-1M); null when not reported.';
comment on column private.provider_billed_usage.input_tokens is 'Input tokens neither read from nor written to the cache.';
comment on column private.provider_billed_usage.cached_input_tokens is 'Input tokens read from the prompt cache.';
comment on column private.provider_billed_usage.cache_write_tokens is 'Input tokens written to the prompt cache, every TTL together.';
comment on column private.provider_billed_usage.cache_write_5m_tokens is 'Input tokens written to a 5-minute cache entry.';
comment on column private.provider_billed_usage.cache_write_1h_tokens is 'Input tokens written to a 1-hour cache entry.';
comment on column private.provider_billed_usage.output_tokens is 'Output tokens (reasoning included where the provider counts it in).';
comment on column private.provider_billed_usage.reasoning_tokens is 'Reasoning tokens; null when the provider does not report them.';
comment on column private.provider_billed_usage.input_audio_tokens is 'Audio input tokens (OpenAI), included in the input counts.';
comment on column private.provider_billed_usage.output_audio_tokens is 'Audio output tokens (OpenAI), included in output_tokens.';
comment on column private.provider_billed_usage.requests is 'Model requests; null when the provider does not report them.';
comment on column private.provider_billed_usage.web_search_requests is 'Server-side web search requests.';
comment on column private.provider_billed_usage.sync_id is 'The window sync that wrote the row.';
comment on column private.provider_billed_usage.synced_at is 'When the row was last written.';
alter table private.provider_billed_usage enable row level security;
create index provider_billed_usage_org_day_idx on private.provider_billed_usage (org_id, bucket_start);
create index provider_billed_usage_window_idx on private.provider_billed_usage (connection_id, endpoint, bucket_start);

-- ---------------------------------------------------------------- normalized cost lines
create table private.provider_billed_cost (
  id bigint generated always as identity primary key,
  org_id uuid not null references public.organizations (id) on delete cascade,
  connection_id uuid not null references public.provider_connections (id) on delete cascade,
  provider text not null constraint provider_is_known check (provider in ('openai', 'anthropic')),
  endpoint text not null,
  bucket_start timestamptz not null,
  bucket_end timestamptz not null,
  bucket_width text not null constraint bucket_width_is_known check (bucket_width in ('1h', '1d')),
  line_item text,
  project_id text,
  model text,
  cost_type text not null constraint cost_type_is_known
    check (cost_type in ('tokens', 'web_search', 'code_execution', 'other')),
  token_type text,
  service_tier text,
  context_window text,
  currency text not null default 'usd',
  amount numeric not null,
  sync_id uuid not null,
  synced_at timestamptz not null default now(),
  constraint provider_billed_cost_natural_key unique nulls not distinct
    (connection_id, endpoint, bucket_width, bucket_start, line_item, project_id, model, cost_type, token_type,
     service_tier, context_window, currency),
  constraint bucket_is_ordered check (bucket_end > bucket_start),
  constraint currency_is_lower check (currency = lower(currency))
);
comment on table private.provider_billed_cost is
  'Cost lines as a provider bills them, one row per report bucket and line; a re-sync of a bucket replaces its rows.';
comment on column private.provider_billed_cost.id is 'Row id.';
comment on column private.provider_billed_cost.org_id is 'The organization of the connection.';
comment on column private.provider_billed_cost.connection_id is 'The provider connection the report was read with.';
comment on column private.provider_billed_cost.provider is 'openai or anthropic.';
comment on column private.provider_billed_cost.endpoint is 'The admin API path the line came from.';
comment on column private.provider_billed_cost.bucket_start is 'Start of the report bucket (UTC).';
comment on column private.provider_billed_cost.bucket_end is 'End of the report bucket (exclusive).';
comment on column private.provider_billed_cost.bucket_width is 'The bucket width (the cost reports are daily).';
comment on column private.provider_billed_cost.line_item is 'OpenAI line_item or Anthropic description, as billed.';
comment on column private.provider_billed_cost.project_id is 'OpenAI project or Anthropic workspace; null when not broken down.';
comment on column private.provider_billed_cost.model is
  'The model the line bills (Anthropic''s model; read from OpenAI''s "<model>, <kind>" line item); null when not per model.';
comment on column private.provider_billed_cost.cost_type is 'tokens, web_search, code_execution or other.';
comment on column private.provider_billed_cost.token_type is
  'Which tokens the line bills (Anthropic''s token_type; the kind after the comma of an OpenAI line item); null unless reported.';
comment on column private.provider_billed_cost.service_tier is 'The service tier the line bills; null unless reported.';
comment on column private.provider_billed_cost.context_window is 'Anthropic: the context window tier; null unless reported.';
comment on column private.provider_billed_cost.currency is 'Lowercase ISO-4217 currency of amount (the providers bill usd).';
comment on column private.provider_billed_cost.amount is 'The amount in currency units (Anthropic''s cents converted: 123.45 cents is 1.2345).';
comment on column private.provider_billed_cost.sync_id is 'The window sync that wrote the row.';
comment on column private.provider_billed_cost.synced_at is 'When the row was last written.';
alter table private.provider_billed_cost enable row level security;
create index provider_billed_cost_org_day_idx on private.provider_billed_cost (org_id, bucket_start);
create index provider_billed_cost_window_idx on private.provider_billed_cost (connection_id, endpoint, bucket_start);

-- ---------------------------------------------------------------- the daily views the reconciliation reads
create view private.provider_billed_usage_daily with (security_invoker = true) as
select u.org_id,
       u.connection_id,
       u.provider,
       (u.bucket_start at time zone 'UTC')::date as day,
       u.model,
       private.canonical_model(u.provider, u.model, u.org_id) as canonical_model,
       u.project_id,
       u.api_key_id,
       u.service_tier,
       u.batch,
       u.context_window,
       sum(u.input_tokens)::bigint as input_tokens,
       sum(u.cached_input_tokens)::bigint as cached_input_tokens,
       sum(u.cache_write_tokens)::bigint as cache_write_tokens,
       sum(u.cache_write_5m_tokens)::bigint as cache_write_5m_tokens,
       sum(u.cache_write_1h_tokens)::bigint as cache_write_1h_tokens,
       sum(u.output_tokens)::bigint as output_tokens,
       sum(u.reasoning_tokens)::bigint as reasoning_tokens,
       sum(u.requests)::bigint as requests,
       sum(u.web_search_requests)::bigint as web_search_requests,
       sum(u.input_audio_tokens)::bigint as input_audio_tokens,
       sum(u.output_audio_tokens)::bigint as output_audio_tokens
  from private.provider_billed_usage u
 group by u.org_id, u.connection_id, u.provider, (u.bucket_start at time zone 'UTC')::date, u.model, u.project_id,
          u.api_key_id, u.service_tier, u.batch, u.context_window;
comment on view private.provider_billed_usage_daily is
  'Provider-reported usage per UTC day, connection, model and the provider''s breakdown (project or workspace, key, tier, batch, context window).';
comment on column private.provider_billed_usage_daily.org_id is 'The organization.';
comment on column private.provider_billed_usage_daily.connection_id is 'The provider connection the report was read with.';
comment on column private.provider_billed_usage_daily.provider is 'openai or anthropic.';
comment on column private.provider_billed_usage_daily.day is 'The UTC day of the report buckets.';
comment on column private.provider_billed_usage_daily.model is 'The model as the provider reports it.';
comment on column private.provider_billed_usage_daily.canonical_model is
  'private.canonical_model of the model for the organization: the key that matches usage_records.canonical_model.';
comment on column private.provider_billed_usage_daily.project_id is 'OpenAI project or Anthropic workspace; null when not broken down.';
comment on column private.provider_billed_usage_daily.api_key_id is 'The provider''s API key id; null when not broken down.';
comment on column private.provider_billed_usage_daily.service_tier is 'The provider''s service tier; null when not reported.';
comment on column private.provider_billed_usage_daily.batch is 'OpenAI Batch API usage; null when not reported.';
comment on column private.provider_billed_usage_daily.context_window is 'Anthropic context window tier; null when not reported.';
comment on column private.provider_billed_usage_daily.input_tokens is 'Uncached input tokens (neither cache reads nor cache writes).';
comment on column private.provider_billed_usage_daily.cached_input_tokens is 'Input tokens read from the cache.';
comment on column private.provider_billed_usage_daily.cache_write_tokens is 'Input tokens written to the cache, all TTLs.';
comment on column private.provider_billed_usage_daily.cache_write_5m_tokens is 'Cache writes with a 5-minute TTL.';
comment on column private.provider_billed_usage_daily.cache_write_1h_tokens is 'Cache writes with a 1-hour TTL.';
comment on column private.provider_billed_usage_daily.output_tokens is 'Output tokens.';
comment on column private.provider_billed_usage_daily.reasoning_tokens is 'Reasoning tokens; null when the provider does not report them.';
comment on column private.provider_billed_usage_daily.requests is 'Model requests; null when the provider does not report them.';
comment on column private.provider_billed_usage_daily.web_search_requests is 'Server-side web search requests.';
comment on column private.provider_billed_usage_daily.input_audio_tokens is 'Audio input tokens (OpenAI), part of the input counts.';
comment on column private.provider_billed_usage_daily.output_audio_tokens is 'Audio output tokens (OpenAI), part of output_tokens.';

create view private.provider_billed_cost_daily with (security_invoker = true) as
select c.org_id,
       c.connection_id,
       c.provider,
       (c.bucket_start at time zone 'UTC')::date as day,
       case when c.model is not null then private.canonical_model(c.provider, c.model, c.org_id) end as canonical_model,
       c.project_id,
       c.line_item,
       c.cost_type,
       c.token_type,
       c.service_tier,
       sum(c.amount) as amount_usd,
       c.model,
       c.context_window
  from private.provider_billed_cost c
 where c.currency = 'usd'
 group by c.org_id, c.connection_id, c.provider, (c.bucket_start at time zone 'UTC')::date, c.model, c.project_id,
          c.line_item, c.cost_type, c.token_type, c.service_tier, c.context_window;
comment on view private.provider_billed_cost_daily is
  'Provider-billed cost in USD per UTC day, connection and billed line (model, project or workspace, cost and token type, tier).';
comment on column private.provider_billed_cost_daily.org_id is 'The organization.';
comment on column private.provider_billed_cost_daily.connection_id is 'The provider connection the report was read with.';
comment on column private.provider_billed_cost_daily.provider is 'openai or anthropic.';
comment on column private.provider_billed_cost_daily.day is 'The UTC day of the report buckets.';
comment on column private.provider_billed_cost_daily.canonical_model is
  'private.canonical_model of the billed model; null when the line is not per model.';
comment on column private.provider_billed_cost_daily.project_id is 'OpenAI project or Anthropic workspace; null when not broken down.';
comment on column private.provider_billed_cost_daily.line_item is 'OpenAI line_item or Anthropic description.';
comment on column private.provider_billed_cost_daily.cost_type is 'tokens, web_search, code_execution or other.';
comment on column private.provider_billed_cost_daily.token_type is 'Which tokens the line bills; null unless reported.';
comment on column private.provider_billed_cost_daily.service_tier is 'The service tier billed; null unless reported.';
comment on column private.provider_billed_cost_daily.amount_usd is 'The billed amount in USD.';
comment on column private.provider_billed_cost_daily.model is 'The billed model as the provider names it; null when not per model.';
comment on column private.provider_billed_cost_daily.context_window is 'Anthropic context window tier; null unless reported.';

-- No user role reads any of it (the schema's default privileges give the service its rights); the
-- reconciliation publishes what members may see through its own functions.
revoke all on private.provider_sync_state, private.provider_report_pages, private.provider_billed_usage,
              private.provider_billed_cost, private.provider_billed_usage_daily, private.provider_billed_cost_daily
  from public, anon, authenticated;
