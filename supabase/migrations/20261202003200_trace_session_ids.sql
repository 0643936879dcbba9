-- Trace and session ids on usage rows, so cost can be summed per trace (one request through an agent or
-- a chain: OTLP's trace id, or the SDK's) and per session (a user's conversation), and organizations'
-- own prices applied to every row as it is written.

-- ---------------------------------------------------------------- columns
-- Nullable and without default: adding them rewrites nothing. Indexed only where present, for the
-- look-up of one trace or session; sums over a range read the (org_id, occurred_at) index.
alter table public.usage_records add column trace_id text, add column session_id text;
comment on column public.usage_records.trace_id is
  'The trace the call belongs to: the OTLP span''s trace id (32 hex digits) or the trace_id the SDK sent; null if none.';
comment on column public.usage_records.session_id is
  'The session (conversation, job) the call belongs to, as the client named it (SDK session_id, OTLP '
  'session.id or gen_ai.conversation.id); null if none.';
create index usage_records_org_trace_idx on public.usage_records (org_id, trace_id) where trace_id is not null;
create index usage_records_org_session_idx on public.usage_records (org_id, session_id) where session_id is not null;

create or replace view analytics.usage_records with (security_invoker = true) as
  select id, org_id, occurred_at, received_at, request_id, source, provider, model, price_model, endpoint,
         input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, service_tier, cost_usd,
         client_cost_usd, currency, price_id, priced, latency_ms, time_to_first_token_ms, status, error_code,
         retry_count, is_timeout, is_rate_limited, is_streaming, routed_from_model, cache_hit, prompt_hash,
         task_type, team, project, feature, end_user_id, api_key_id, project_id, metadata, canonical_model,
         trace_id, session_id
  from public.usage_records;
comment on column analytics.usage_records.trace_id is
  'The trace the call belongs to: the OTLP span''s trace id (32 hex digits) or the trace_id the SDK sent; null if none.';
comment on column analytics.usage_records.session_id is
  'The session (conversation, job) the call belongs to, as the client named it; null if none.';

-- ---------------------------------------------------------------- ingest
-- The jsonb path (kept for servers of the previous release while the staged path rolls out) reads the
-- two ids; the staged path copies any staged column usage_records has, so it needs nothing here.
create or replace function private.ingest_events(org uuid, key uuid, key_project uuid, events jsonb)
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
      raw_usage jsonb, occurred_at timestamptz, content_hash text, trace_id text, session_id text)
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
      raw_usage, content_hash, trace_id, session_id)
    select org, i.occurred_at, i.request_id, i.source, i.provider, i.model, p.price_model, i.endpoint,
           i.input_tokens, i.output_tokens, i.cached_tokens, i.cache_write_tokens, i.reasoning_tokens,
           i.service_tier, p.cost_usd, i.client_cost_usd, coalesce(i.currency, 'USD'), p.price_id,
           p.cost_usd is not null, i.latency_ms, i.time_to_first_token_ms, i.status, i.error_code,
           i.retry_count, i.is_timeout, i.is_rate_limited, i.is_streaming, i.routed_from_model, i.cache_hit,
           i.prompt_hash, i.system_prompt_hash, i.task_type, i.team, i.project, i.feature, i.end_user_id,
           key, key_project, coalesce(i.metadata, '{}'), i.raw_usage, decode(i.content_hash, 'hex'), i.trace_id,
           i.session_id
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

-- ---------------------------------------------------------------- organizations' own prices at insert
-- Whatever wrote the rows (either ingest path, OTLP, the LLM layer, a backfill), a call of an
-- organization with its own price for the model is priced with it, in the same statement. One
-- probe per statement when no organization in it has own prices, which is nearly always.
create function private.apply_org_prices() returns trigger
language plpgsql volatile set search_path = '' set jit = off as $$
begin
  if not exists (select 1 from private.model_prices p
                  where p.org_id is not null and p.org_id in (select distinct n.org_id from new_rows n)) then
    return null;
  end if;
  with names as materialized (
    select n.org_id, n.provider, n.model, o.provider_id, o.model_id
      from (select distinct r.org_id, r.provider, r.model from new_rows r
             where exists (select 1 from private.model_prices p where p.org_id = r.org_id)) n
     cross join lateral private.resolve_org_price(n.org_id, n.provider, n.model) o
  ), fresh as (
    select r.id, r.occurred_at, c.price_id, c.price_model, round(c.cost_usd, 12) as cost_usd
      from new_rows r
      join names n on n.org_id = r.org_id and n.provider = r.provider and n.model = r.model
     cross join lateral private.price_cost(n.provider_id, n.model_id, false, r.occurred_at, r.input_tokens,
                                           r.output_tokens, r.cached_tokens, r.cache_write_tokens, r.reasoning_tokens,
                                           r.service_tier) c
  )
  update public.usage_records u
     set cost_usd = f.cost_usd, price_id = f.price_id, price_model = f.price_model, priced = true
    from fresh f
   where u.id = f.id and u.occurred_at = f.occurred_at
     and (u.cost_usd, u.price_id, u.price_model, u.priced) is distinct from (f.cost_usd, f.price_id, f.price_model, true);
  return null;
end
$$;
comment on function private.apply_org_prices() is
  'Trigger: price newly written usage rows with their organization''s own price where one is in effect.';
revoke all on function private.apply_org_prices() from public;

-- Row-at-a-time where statement transition tables are unavailable (a Timescale hypertable).
create function private.apply_org_price_to_row() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  c record;
begin
  if exists (select 1 from private.model_prices p where p.org_id = new.org_id) then
    select x.price_id, x.price_model, round(x.cost_usd, 12) as cost_usd into c
      from private.resolve_org_price(new.org_id, new.provider, new.model) o
     cross join lateral private.price_cost(o.provider_id, o.model_id, false, new.occurred_at, new.input_tokens,
                                           new.output_tokens, new.cached_tokens, new.cache_write_tokens,
                                           new.reasoning_tokens, new.service_tier) x;
    if found then
      new.cost_usd := c.cost_usd;
      new.price_id := c.price_id;
      new.price_model := c.price_model;
      new.priced := true;
    end if;
  end if;
  return new;
end
$$;
comment on function private.apply_org_price_to_row() is
  'Trigger (hypertable path): price a usage row with its organization''s own price where one is in effect.';
revoke all on function private.apply_org_price_to_row() from public;

do $$
begin
  if (select kind from private.usage_layout) = 'hypertable' then
    create trigger apply_org_price before insert on public.usage_records
      for each row execute function private.apply_org_price_to_row();
  else
    create trigger apply_org_prices after insert on public.usage_records
      referencing new table as new_rows for each statement execute function private.apply_org_prices();
  end if;
end
$$;
