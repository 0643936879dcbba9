-- Ingest claims request ids in their byte order (collate "C"), not the database's collation. The ingest
-- function now stores a batch in parts, each a call of private.ingest_staged in the same transaction,
-- cut from the batch sorted by request id as Python sorts strings (by code point, which is UTF-8's byte
-- order). Within a call the claims were inserted in the collation's order; under a collation that
-- disagrees with byte order, two concurrent batches sharing request ids could take them in crossed
-- orders across their parts and deadlock. Same signature, same outcomes.

create or replace function private.ingest_staged(org uuid, key uuid, key_project uuid)
returns table (idx integer, outcome text, priced boolean)
-- jit off: a 1,000-event batch can cross JIT's cost threshold, and compiling costs more than it saves.
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  target_columns text;
  source_columns text;
  stored_idx integer[];
  unpriced_idx integer[];
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
  -- first occurrence of a request id in a batch is the one stored. Claims are taken in the byte order
  -- of request ids whatever the database's collation: a batch arrives in parts sorted that way (a call
  -- each, in one transaction), so any two batches lock the claims they share in the same order and
  -- cannot deadlock.
  execute format($sql$
    with input as (
      select distinct on (b.request_id collate "C") b.*
        from pg_temp.ingest_batch b
       order by b.request_id collate "C", b.idx
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
    select coalesce(array_agg(i.idx), '{}'), coalesce(array_agg(i.idx) filter (where not s.priced), '{}')
      from stored s
      join input i on i.request_id = s.request_id
  $sql$, target_columns, source_columns)
  into stored_idx, unpriced_idx
  using org, key, key_project;

  -- A new statement, so a new snapshot: claims committed by concurrent batches while we waited on them
  -- are visible here, and their content decides duplicate versus conflict. Only events not stored have
  -- their claim looked up: the subquery sits in a CASE branch, which is evaluated only when reached.
  return query execute $sql$
    select b.idx,
           case when s.idx is not null then 'accepted'
                when (select c.content_hash from private.usage_request_ids c
                       where c.org_id = $1 and c.request_id = b.request_id) = b.content_hash then 'duplicate'
                else 'conflict' end,
           u.idx is null
      from pg_temp.ingest_batch b
      left join unnest($2) s(idx) on s.idx = b.idx
      left join unnest($3) u(idx) on u.idx = b.idx
     order by b.idx
  $sql$ using org, stored_idx, unpriced_idx;
end
$$;
comment on function private.ingest_staged(uuid, uuid, uuid) is
  'Exactly-once, priced insert of the batch staged in pg_temp.ingest_batch (idx, content_hash and usage_records '
  'columns); one outcome (accepted|duplicate|conflict) per staged index, priced for accepted events.';
