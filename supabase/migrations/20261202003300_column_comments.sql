-- Every column a user can read about usage has a comment: the raw table (public.usage_records), and
-- every view of the `analytics` schema (`\d+ analytics.usage_daily` in psql, or any SQL client's column
-- help). One text per column name where the meaning is the same everywhere, written once here;
-- supabase/tests/analytics/column_comments.test.sql fails when a readable column has none.

do $$
declare
  -- What a usage row's columns mean, wherever they appear (the raw table and analytics.usage_records).
  usage_columns constant jsonb := jsonb_build_object(
    'id', 'Row id (with occurred_at, the primary key of the partitioned table).',
    'org_id', 'The organization the call belongs to (from the API key that reported it).',
    'occurred_at', 'When the call started (the event''s timestamp, UTC); the table is partitioned by it.',
    'received_at', 'When TokenTRA stored the event.',
    'request_id', 'The client''s id for the call; stored once per organization (retries are duplicates).',
    'source', 'How the event arrived: sdk, otel (an OTLP span) or api.',
    'provider', 'The provider as the client named it (openai, anthropic, azure, bedrock, ...).',
    'model', 'The model name exactly as sent: the snapshot a response named, or the model a failed call requested.',
    'price_model', 'What pricing resolved the call to: <provider id>/<model id> of genai-prices, or '
                   'org:<organization>[:<provider>]/<name> for the organization''s own price; null while unpriced.',
    'endpoint', 'The API operation (chat, embeddings, responses, ...), when the client said.',
    'input_tokens', 'All input tokens, cache reads and writes included.',
    'output_tokens', 'All output tokens, reasoning included.',
    'cached_tokens', 'Input tokens read from the provider''s prompt cache (part of input_tokens).',
    'cache_write_tokens', 'Input tokens written to the provider''s prompt cache (part of input_tokens).',
    'reasoning_tokens', 'Output tokens spent on reasoning (part of output_tokens).',
    'service_tier', 'The provider''s service tier (flex, priority, batch, ...), which selects tier prices.',
    'cost_usd', 'Our cost from the price effective at occurred_at (USD, exact); null while unpriced.',
    'client_cost_usd', 'The cost the client says it was billed, kept beside ours.',
    'currency', 'Currency of client_cost_usd (ISO 4217); cost_usd is always USD.',
    'price_id', 'The price row the call was priced with (analytics.model_prices.price_id).',
    'priced', 'True when cost_usd comes from a known price; false for a model nothing prices yet.',
    'latency_ms', 'Time from request to the end of the response, in milliseconds.',
    'time_to_first_token_ms', 'Time to the first streamed token, in milliseconds.',
    'status', 'success, error, timeout, rate_limited or cancelled.',
    'error_code', 'The provider''s or client''s error code for a failed call.',
    'retry_count', 'Retries the SDK made before this outcome.',
    'is_timeout', 'The call timed out.',
    'is_rate_limited', 'The provider refused the call for its rate limit.',
    'is_streaming', 'The response was streamed.',
    'routed_from_model', 'The model the caller asked for when a routing rule sent the call to another one.',
    'cache_hit', 'The call was answered from a response cache (TokenTRA''s semantic cache or the client''s).',
    'prompt_hash', 'Hash of the prompt (the text itself is never stored), for finding repeated requests.',
    'system_prompt_hash', 'Hash of the system prompt alone.',
    'task_type', 'The kind of task as the client labelled it (classification, summarization, ...).',
    'team', 'The team tag sent with the call (metadata.team).',
    'project', 'The project tag sent with the call (metadata.project).',
    'feature', 'The feature tag sent with the call (metadata.feature).',
    'end_user_id', 'Your end user the call was made for (metadata.user_id).',
    'api_key_id', 'The TokenTRA API key that reported the call.',
    'project_id', 'The project the reporting API key is pinned to, if any.',
    'metadata', 'The rest of the metadata sent with the call; SDK signals under the reserved key tokentra.',
    'raw_usage', 'The provider''s usage object as the client sent it.',
    'content_hash', 'Hash of the event as first stored: a retry with other content is refused as a conflict.',
    'canonical_model', 'The model this call is grouped under: the model id its price resolved to (genai-prices'' '
                       'match rules or the organization''s own price), else the name without vendor prefix and '
                       'snapshot date. model keeps the name as sent.',
    'trace_id', 'The trace the call belongs to: the OTLP span''s trace id (32 hex digits) or the trace_id the SDK '
                'sent; null if none.',
    'session_id', 'The session (conversation, job) the call belongs to, as the client named it; null if none.');
  -- The bucket views' columns (analytics.usage_hourly, usage_daily).
  bucket_columns constant jsonb := jsonb_build_object(
    'bucket', 'Start of the UTC hour or day.',
    'org_id', 'The organization.',
    'team', 'The team tag of the calls (null: untagged).',
    'project', 'The project tag of the calls (null: untagged).',
    'provider', 'The provider as clients named it.',
    'model', 'The model name as sent (a snapshot or the requested name); group by canonical_model for one '
             'identity per model.',
    'feature', 'The feature tag of the calls (null: untagged).',
    'api_key_id', 'The TokenTRA API key that reported the calls.',
    'status', 'success, error, timeout, rate_limited or cancelled.',
    'requests', 'LLM calls.',
    'errors', 'Calls whose status is not success.',
    'timeouts', 'Calls that timed out.',
    'rate_limited', 'Calls refused by the provider''s rate limit.',
    'retries', 'Sum of the SDK''s retry counts.',
    'cache_hits', 'Calls answered from a response cache (not prompt-cache reads: see cached_tokens).',
    'unpriced', 'Calls whose model had no known price (cost counted as 0).',
    'input_tokens', 'All input tokens, cache reads and writes included.',
    'output_tokens', 'All output tokens, reasoning included.',
    'cached_tokens', 'Input tokens read from a prompt cache.',
    'cache_write_tokens', 'Input tokens written to a prompt cache.',
    'reasoning_tokens', 'Output tokens spent on reasoning.',
    'cost_usd', 'Exact sum of cost_usd (numeric, USD).',
    'latency_count', 'Calls with a latency; latency_sum_ms / latency_count is the mean.',
    'latency_sum_ms', 'Sum of the calls'' latencies in milliseconds.',
    'latency_histogram', 'Latency counts per slot: analytics.latency_percentile(analytics.merge_latency('
                         'latency_histogram), 0.95).',
    'canonical_model', 'The model calls are grouped under (see analytics.usage_records.canonical_model); model '
                       'is the name as sent.');
  end_user_columns constant jsonb := jsonb_build_object(
    'bucket', 'Start of the UTC day or month.',
    'org_id', 'The organization.',
    'end_user_id', 'Your end user (metadata.user_id sent with the calls).',
    'requests', 'LLM calls made for the end user.',
    'errors', 'Calls whose status is not success.',
    'input_tokens', 'All input tokens, cache reads and writes included.',
    'output_tokens', 'All output tokens, reasoning included.',
    'cached_tokens', 'Input tokens read from a prompt cache.',
    'cost_usd', 'Exact sum of cost_usd (numeric, USD).');
  price_columns constant jsonb := jsonb_build_object(
    'price_id', 'The price row (usage_records.price_id names the one a call was priced with).',
    'provider_id', 'genai-prices'' provider id, or org:<organization>[:<provider>] for an organization''s own price.',
    'model_id', 'genai-prices'' model id, or the model name an organization set its own price for.',
    'service_tier', 'The service tier the price applies to ('''' = standard).',
    'effective_from', 'The instant this price set takes effect (-infinity: since always); a later set replaces it.',
    'daily_from', 'Start of the UTC time-of-day window the price applies in (off-peak prices).',
    'daily_until', 'End of that window (exclusive).',
    'above_input_tokens', 'Long-context tier: the price applies to calls with more input tokens than this (-1: all).',
    'input_mtok', 'USD per million input tokens.',
    'cache_read_mtok', 'USD per million input tokens read from a prompt cache (null: the input price).',
    'cache_write_mtok', 'USD per million input tokens written to a prompt cache (null: the input price).',
    'output_mtok', 'USD per million output tokens.',
    'output_reasoning_mtok', 'USD per million reasoning tokens (null: the output price).',
    'requests_kcount', 'USD per thousand requests.',
    'org_id', 'The organization that set this price for itself; null for genai-prices'' catalogue.');
  rel record;
  col record;
  map jsonb;
begin
  for rel in
    select c.oid, n.nspname, c.relname
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where (n.nspname = 'analytics' and c.relkind in ('v', 'm') and c.relname in
              ('usage_records', 'usage_hourly', 'usage_daily', 'end_user_daily', 'end_user_monthly', 'model_prices'))
        or (n.nspname = 'public' and c.relname = 'usage_records')
  loop
    map := case when rel.relname = 'usage_records' then usage_columns
                when rel.relname in ('usage_hourly', 'usage_daily') then bucket_columns
                when rel.relname like 'end_user_%' then end_user_columns
                else price_columns end;
    for col in
      select a.attname from pg_catalog.pg_attribute a
       where a.attrelid = rel.oid and a.attnum > 0 and not a.attisdropped and map ? a.attname
    loop
      execute format('comment on column %I.%I.%I is %L', rel.nspname, rel.relname, col.attname, map ->> col.attname);
    end loop;
  end loop;
end
$$;
