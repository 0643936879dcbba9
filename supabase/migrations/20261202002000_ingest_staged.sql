-- Ingest from a staged batch. The ingest function COPYs a validated batch into a temporary table,
-- pg_temp.ingest_batch, created `on commit drop` in the same transaction (no session state survives
-- it, so a transaction pooler in front of the database is fine), then calls private.ingest_staged once.
-- A binary COPY moves a batch several times faster than one jsonb argument parsed twice by
-- jsonb_to_recordset, and everything after it is set-based: claim, price, insert, outcomes.
--
-- The staged table holds `idx` (the event's index in the request) and `content_hash` besides columns
-- named as usage_records' columns. Every staged column usage_records has (and may be written: not
-- generated, not the identity, not set here) is copied, cast to its type there, so a new optional event
-- field needs a column of usage_records and a staged column of the same name, and nothing here.
-- private.ingest_events (20261122001300) stays for servers of the previous release during a deploy.

create function private.ingest_staged(org uuid, key uuid, key_project uuid)
returns table (idx integer, outcome text, priced boolean)
-- jit off: a 1,000-event batch can cross JIT's cost threshold, and compiling costs more than it saves.
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  target_columns text;
  source_columns text;
  stored_ids text[];
  unpriced_ids text[];
begin
  select string_agg(format('%I', u.attname), ', ' order by u.attnum),
         string_agg(format('i.%I::%s', u.attname, pg_catalog.format_type(u.atttypid, u.atttypmod)), ', '
                    order by u.attnum)
    into target_columns, source_columns
    from pg_catalog.pg_attribute s
    join pg_catalog.pg_attribute u
      on u.attrelid = 'public.usage_records'::regclass and u.attname = s.attname
   where s.attrelid = 'pg_temp.ingest_batch'::regclass and s.attnum > 0 and not s.attisdropped
     and u.attnum > 0 and not u.attisdropped and u.attgenerated = '' and u.attidentity = ''
     and u.attname not in ('org_id', 'api_key_id', 'project_id', 'price_id', 'price_model', 'cost_usd', 'priced',
                           'content_hash');

  -- Each event is claimed by (org_id, request_id) and written in the same statement, so claim and row
  -- commit together: a failure loses neither, a retry (whatever its timestamp) finds the claim. The
  -- first occurrence of a request id in a batch is the one stored.
  execute format($sql$
    with input as (
      select distinct on (b.request_id) b.*
        from pg_temp.ingest_batch b
       order by b.request_id, b.idx
    ),
    -- A batch names few models: resolve each (provider, model) once, not once per event.
    resolved as (
      select n.provider, n.model, r.provider_id, r.model_id, r.direct
        from (select distinct i.provider, i.model from input i) n
       cross join lateral private.resolve_price(n.provider, n.model) r
    ),
    claimed as (
      insert into private.usage_request_ids (org_id, request_id, occurred_at, content_hash)
      select $1, i.request_id, i.occurred_at, i.content_hash from input i
      on conflict (org_id, request_id) do nothing
      returning request_id
    ),
    stored as (
      insert into public.usage_records (org_id, api_key_id, project_id, price_id, price_model, cost_usd, priced,
                                        content_hash, %1$s)
      select $1, $2, $3, p.price_id, p.price_model, p.cost_usd, p.cost_usd is not null, i.content_hash, %2$s
        from input i
        join claimed c on c.request_id = i.request_id
        left join resolved m on m.provider = i.provider and m.model = i.model
        left join lateral private.price_cost(m.provider_id, m.model_id, m.direct, i.occurred_at, i.input_tokens,
                                             i.output_tokens, i.cached_tokens, i.cache_write_tokens,
                                             i.reasoning_tokens, i.service_tier) p on m.model_id is not null
      returning request_id, priced
    )
    select coalesce(array_agg(s.request_id), '{}'),
           coalesce(array_agg(s.request_id) filter (where not s.priced), '{}')
      from stored s
  $sql$, target_columns, source_columns)
  into stored_ids, unpriced_ids
  using org, key, key_project;

  -- A new statement, so a new snapshot: claims committed by concurrent batches while we waited on them
  -- are visible here, and their content decides duplicate versus conflict.
  return query execute $sql$
    select b.idx,
           case when s.id is not null and b.idx = min(b.idx) over (partition by b.request_id) then 'accepted'
                when r.content_hash = b.content_hash then 'duplicate'
                else 'conflict' end,
           u.id is null
      from pg_temp.ingest_batch b
      left join unnest($2) s(id) on s.id = b.request_id
      left join unnest($3) u(id) on u.id = b.request_id
      left join private.usage_request_ids r on r.org_id = $1 and r.request_id = b.request_id
     order by b.idx
  $sql$ using org, stored_ids, unpriced_ids;
end
$$;
comment on function private.ingest_staged(uuid, uuid, uuid) is
  'Exactly-once, priced insert of the batch staged in pg_temp.ingest_batch (idx, content_hash and usage_records '
  'columns); one outcome (accepted|duplicate|conflict) per staged index, priced for accepted events.';
revoke all on function private.ingest_staged(uuid, uuid, uuid) from public;
grant execute on function private.ingest_staged(uuid, uuid, uuid) to service_role;
