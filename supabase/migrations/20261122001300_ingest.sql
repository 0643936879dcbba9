-- Ingestion: rate limits per API key and the set-based, exactly-once insert of a batch of events.

-- ---------------------------------------------------------------- rate limits
-- One counter row per key per minute: a request (not an event) touches it once.
create table private.api_key_rate_windows (
  key_id uuid not null references public.api_keys (id) on delete cascade,
  window_start timestamptz not null,
  requests integer not null default 0,
  primary key (key_id, window_start)
);
alter table private.api_key_rate_windows enable row level security;

-- Count a request against its key's per-minute limit; say how long to wait when over it.
create function private.take_rate_limit(key uuid, per_minute integer)
returns table (allowed boolean, retry_after integer)
language sql volatile set search_path = '' as $$
  insert into private.api_key_rate_windows as w (key_id, window_start, requests)
  values (key, date_trunc('minute', now()), 1)
  on conflict (key_id, window_start) do update set requests = w.requests + 1
  returning w.requests <= per_minute,
            ceil(extract(epoch from (w.window_start + interval '1 minute' - now())))::integer
$$;
comment on function private.take_rate_limit(uuid, integer) is
  'Count one request for an API key in the current minute; allowed=false past per_minute.';

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-rate-window-cleanup', '*/10 * * * *',
   'delete from private.api_key_rate_windows where window_start < now() - interval ''10 minutes''',
   'Drop rate-limit counters of past minutes.');
select private.schedule_periodic_jobs();

-- ---------------------------------------------------------------- ingest
-- Store a validated batch for one organization. Each event is claimed by (org_id, request_id) and
-- written in the same statement, so claim and row commit together: a failure loses neither, a retry
-- (whatever its timestamp) finds the claim. Returns one outcome per input index: accepted,
-- duplicate (same content as stored) or conflict (same request id, different content: never
-- overwritten). `events` is a JSON array of objects whose keys are usage_records columns plus idx
-- and content_hash (hex); the caller validated them.
create function private.ingest_events(org uuid, key uuid, key_project uuid, events jsonb)
returns table (idx integer, outcome text, priced boolean)
-- jit off: a 1,000-event batch can cross JIT's cost threshold, and compiling costs more than it saves.
language plpgsql volatile set search_path = '' set jit = off as $$
#variable_conflict use_column
declare
  stored_ids text[];
  unpriced_ids text[];
begin
  with input as (
    -- The first occurrence of a request id in a batch is the one stored.
    select distinct on (e.request_id) e.*
    from jsonb_to_recordset(events) as e (
      idx integer, request_id text, source text, provider text, model text, endpoint text,
      input_tokens bigint, output_tokens bigint, cached_tokens bigint, cache_write_tokens bigint,
      reasoning_tokens bigint, service_tier text, client_cost_usd numeric, currency text,
      latency_ms integer, time_to_first_token_ms integer, status text, error_code text,
      retry_count integer, is_timeout boolean, is_rate_limited boolean, is_streaming boolean,
      routed_from_model text, cache_hit boolean, prompt_hash text, system_prompt_hash text,
      task_type text, team text, project text, feature text, end_user_id text, metadata jsonb,
      raw_usage jsonb, occurred_at timestamptz, content_hash text)
    order by e.request_id, e.idx
  ),
  -- A batch names few models: resolve each (provider, model) once, not once per event.
  resolved as (
    select n.provider, n.model, r.provider_id, r.model_id, r.direct
    from (select distinct i.provider, i.model from input i) n
    cross join lateral private.resolve_price(n.provider, n.model) r
  ),
  claimed as (
    insert into private.usage_request_ids (org_id, request_id, occurred_at, content_hash)
    select org, i.request_id, i.occurred_at, decode(i.content_hash, 'hex') from input i
    on conflict (org_id, request_id) do nothing
    returning request_id
  ),
  stored as (
    insert into public.usage_records (
      org_id, occurred_at, request_id, source, provider, model, price_model, endpoint, input_tokens,
      output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, service_tier, cost_usd,
      client_cost_usd, currency, price_id, priced, latency_ms, time_to_first_token_ms, status, error_code,
      retry_count, is_timeout, is_rate_limited, is_streaming, routed_from_model, cache_hit, prompt_hash,
      system_prompt_hash, task_type, team, project, feature, end_user_id, api_key_id, project_id, metadata,
      raw_usage, content_hash)
    select org, i.occurred_at, i.request_id, i.source, i.provider, i.model, p.price_model, i.endpoint,
           i.input_tokens, i.output_tokens, i.cached_tokens, i.cache_write_tokens, i.reasoning_tokens,
           i.service_tier, p.cost_usd, i.client_cost_usd, coalesce(i.currency, 'USD'), p.price_id,
           p.cost_usd is not null, i.latency_ms, i.time_to_first_token_ms, i.status, i.error_code,
           i.retry_count, i.is_timeout, i.is_rate_limited, i.is_streaming, i.routed_from_model, i.cache_hit,
           i.prompt_hash, i.system_prompt_hash, i.task_type, i.team, i.project, i.feature, i.end_user_id,
           key, key_project, coalesce(i.metadata, '{}'), i.raw_usage, decode(i.content_hash, 'hex')
    from input i
    join claimed c on c.request_id = i.request_id
    left join resolved m on m.provider = i.provider and m.model = i.model
    left join lateral private.price_cost(m.provider_id, m.model_id, m.direct, i.occurred_at, i.input_tokens,
                                         i.output_tokens, i.cached_tokens, i.cache_write_tokens,
                                         i.reasoning_tokens, i.service_tier) p on m.model_id is not null
    returning request_id, priced
  )
  select coalesce(array_agg(s.request_id), '{}'), coalesce(array_agg(s.request_id) filter (where not s.priced), '{}')
    into stored_ids, unpriced_ids
  from stored s;

  -- A new statement, so a new snapshot: claims committed by concurrent batches while we waited on
  -- them are visible here, and their content decides duplicate versus conflict.
  return query
  select e.idx,
         case when s.id is not null and e.idx = min(e.idx) over (partition by e.request_id) then 'accepted'
              when r.content_hash = decode(e.content_hash, 'hex') then 'duplicate'
              else 'conflict' end,
         u.id is null
  from jsonb_to_recordset(events) as e (idx integer, request_id text, content_hash text)
  left join unnest(stored_ids) s(id) on s.id = e.request_id
  left join unnest(unpriced_ids) u(id) on u.id = e.request_id
  left join private.usage_request_ids r on r.org_id = org and r.request_id = e.request_id
  order by e.idx;
end
$$;
comment on function private.ingest_events(uuid, uuid, uuid, jsonb) is
  'Exactly-once insert of a validated batch; one outcome (accepted|duplicate|conflict) per event index.';
revoke all on function private.ingest_events(uuid, uuid, uuid, jsonb) from public;
grant execute on function private.ingest_events(uuid, uuid, uuid, jsonb) to service_role;
