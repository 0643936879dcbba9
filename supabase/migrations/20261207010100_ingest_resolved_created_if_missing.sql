-- private.ingest_staged creates pg_temp.ingest_resolved itself when its caller has not: a functions server
-- older than 20261207010000 creates only the staging table, and while it still runs beside the migrated
-- database every batch it sends would otherwise fail. A lookup in the session's own catalog cache per
-- call; same outcomes otherwise.

create or replace function private.ingest_staged(org uuid, key uuid, key_project uuid)
returns table (idx integer, outcome text, priced boolean)
-- jit off: a 1,000-event batch can cross JIT's cost threshold, and compiling costs more than it saves.
-- Generic plans: the parameters are an organization and a key, on which no plan choice depends; a custom
-- plan would be planned again at every call.
language plpgsql volatile set search_path = '' set jit = off set plan_cache_mode = force_generic_plan as $$
declare
  stored_idx integer[];
  unpriced_idx integer[];
begin
  if pg_catalog.to_regclass('pg_temp.ingest_resolved') is null then
    create temp table ingest_resolved (provider text, model text, provider_id text, model_id text, direct boolean)
      on commit delete rows;
  end if;
  -- A batch names few models: each (provider, model) is resolved once per transaction, not once per
  -- event or per part; the names this part adds are resolved here, before the statement that uses them.
  insert into pg_temp.ingest_resolved (provider, model, provider_id, model_id, direct)
  select n.provider, n.model, r.provider_id, r.model_id, r.direct
    from (select distinct b.provider, b.model from pg_temp.ingest_batch b) n
    left join lateral private.resolve_price(n.provider, n.model) r on true
   where not exists (select 1 from pg_temp.ingest_resolved x where x.provider = n.provider and x.model = n.model);

  -- Each event is claimed by (org_id, request_id) and written in the same statement, so claim and row
  -- commit together: a failure loses neither, a retry (whatever its timestamp) finds the claim. The
  -- first occurrence of a request id in a batch is the one stored. Claims are taken in the byte order
  -- of request ids whatever the database's collation: a batch arrives in parts sorted that way (a call
  -- each, in one transaction), so any two batches lock the claims they share in the same order and
  -- cannot deadlock.
  with input as (
    select distinct on (b.request_id collate "C") b.*
      from pg_temp.ingest_batch b
     order by b.request_id collate "C", b.idx
  ),
  claimed as (
    insert into private.usage_request_ids (org_id, request_id, occurred_at, content_hash)
    select org, i.request_id, i.occurred_at, i.content_hash from input i
    on conflict (org_id, request_id) do nothing
    returning request_id
  ),
  stored as (
    insert into public.usage_records (org_id, api_key_id, project_id, price_id, price_model, cost_usd, priced,
                                      content_hash, occurred_at, request_id, source, provider, model, endpoint,
                                      input_tokens, output_tokens, cached_tokens, cache_write_tokens,
                                      reasoning_tokens, service_tier, client_cost_usd, currency, latency_ms,
                                      time_to_first_token_ms, status, error_code, retry_count, is_timeout,
                                      is_rate_limited, is_streaming, routed_from_model, cache_hit, prompt_hash,
                                      system_prompt_hash, task_type, team, project, feature, end_user_id, metadata,
                                      raw_usage, trace_id, session_id)
    select org, key, key_project, p.price_id, p.price_model, p.cost_usd, p.cost_usd is not null, i.content_hash,
           i.occurred_at, i.request_id, i.source, i.provider, i.model, i.endpoint, i.input_tokens, i.output_tokens,
           i.cached_tokens, i.cache_write_tokens, i.reasoning_tokens, i.service_tier, i.client_cost_usd, i.currency,
           i.latency_ms, i.time_to_first_token_ms, i.status, i.error_code, i.retry_count, i.is_timeout,
           i.is_rate_limited, i.is_streaming, i.routed_from_model, i.cache_hit, i.prompt_hash, i.system_prompt_hash,
           i.task_type, i.team, i.project, i.feature, i.end_user_id, i.metadata::jsonb, i.raw_usage::jsonb,
           i.trace_id, i.session_id
      from input i
      join claimed c on c.request_id = i.request_id
      left join pg_temp.ingest_resolved m on m.provider = i.provider and m.model = i.model
      left join lateral private.price_cost(m.provider_id, m.model_id, m.direct, i.occurred_at, i.input_tokens,
                                           i.output_tokens, i.cached_tokens, i.cache_write_tokens,
                                           i.reasoning_tokens, i.service_tier) p on m.model_id is not null
    returning usage_records.request_id, usage_records.priced
  )
  select coalesce(array_agg(i.idx), '{}'), coalesce(array_agg(i.idx) filter (where not s.priced), '{}')
    into stored_idx, unpriced_idx
    from stored s
    join input i on i.request_id = s.request_id;

  -- A new statement, so a new snapshot: claims committed by concurrent batches while we waited on them
  -- are visible here, and their content decides duplicate versus conflict. Only events not stored have
  -- their claim looked up: the subquery sits in a CASE branch, which is evaluated only when reached.
  return query
    select b.idx,
           case when s.idx is not null then 'accepted'
                when (select c.content_hash from private.usage_request_ids c
                       where c.org_id = org and c.request_id = b.request_id) = b.content_hash then 'duplicate'
                else 'conflict' end,
           u.idx is null
      from pg_temp.ingest_batch b
      left join unnest(stored_idx) s(idx) on s.idx = b.idx
      left join unnest(unpriced_idx) u(idx) on u.idx = b.idx
     order by b.idx;
end
$$;
comment on function private.ingest_staged(uuid, uuid, uuid) is
  'Exactly-once, priced insert of the batch staged in pg_temp.ingest_batch (idx, content_hash and usage_records '
  'columns); one outcome (accepted|duplicate|conflict) per staged index, priced for accepted events. The price '
  'names resolved so far in the transaction are kept in pg_temp.ingest_resolved (provider, model text, provider_id, '
  'model_id text, direct boolean; emptied at commit), created here if the caller has not.';
