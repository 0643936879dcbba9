-- The writes of the provider billing sync, one function per step, so that each page is stored whole or
-- not at all: its raw body, its normalized rows (upserted on their natural key: a re-sync replaces,
-- never duplicates) and the cursor that says the page is done. A window's last page also removes the
-- rows of the window the provider no longer reports and marks the window synced.

-- ---------------------------------------------------------------- the canonical model, stored
-- private.canonical_model costs milliseconds a call (it resolves the organization's own prices), so the
-- daily views cannot call it per group: each row keeps the canonical model of its model as resolved when
-- it was written (a page resolves each distinct model once), as usage_records does.
alter table private.provider_billed_usage add column canonical_model text;
comment on column private.provider_billed_usage.canonical_model is
  'private.canonical_model of model for the organization, as resolved when the row was written.';
alter table private.provider_billed_cost add column canonical_model text;
comment on column private.provider_billed_cost.canonical_model is
  'private.canonical_model of model for the organization, as resolved when the row was written; null when the line is not per model.';

create or replace view private.provider_billed_usage_daily with (security_invoker = true) as
select u.org_id,
       u.connection_id,
       u.provider,
       (u.bucket_start at time zone 'UTC')::date as day,
       u.model,
       u.canonical_model,
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
 group by u.org_id, u.connection_id, u.provider, (u.bucket_start at time zone 'UTC')::date, u.model, u.canonical_model,
          u.project_id, u.api_key_id, u.service_tier, u.batch, u.context_window;

create or replace view private.provider_billed_cost_daily with (security_invoker = true) as
select c.org_id,
       c.connection_id,
       c.provider,
       (c.bucket_start at time zone 'UTC')::date as day,
       c.canonical_model,
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
 group by c.org_id, c.connection_id, c.provider, (c.bucket_start at time zone 'UTC')::date, c.model, c.canonical_model,
          c.project_id, c.line_item, c.cost_type, c.token_type, c.service_tier, c.context_window;

-- ---------------------------------------------------------------- open (or resume) a window
-- The window in progress for a connection and endpoint, started with [window_start, window_end) if none
-- is: a crashed run resumes the window it left, with its cursor, rather than starting over.
create function private.begin_provider_sync_window(connection uuid, endpoint_path text, from_ts timestamptz,
                                                   to_ts timestamptz)
returns table (sync_id uuid, window_start timestamptz, window_end timestamptz, next_page text, pages_in_window integer,
               resumed boolean)
language plpgsql volatile set search_path = '' as $$
declare
  org uuid;
  s private.provider_sync_state;
begin
  select c.org_id into org from public.provider_connections c where c.id = connection;
  if org is null then
    raise exception 'connection: no provider connection %', connection using errcode = '23503';
  end if;
  insert into private.provider_sync_state as t (connection_id, org_id, endpoint)
  values (connection, org, endpoint_path)
  on conflict on constraint provider_sync_state_pkey do nothing;
  select * into s from private.provider_sync_state t
   where t.connection_id = connection and t.endpoint = endpoint_path for update;
  if s.sync_id is not null then
    return query select s.sync_id, s.window_start, s.window_end, s.next_page, s.pages_in_window, true;
    return;
  end if;
  update private.provider_sync_state t
     set window_start = from_ts, window_end = to_ts,
         sync_id = gen_random_uuid(), next_page = null, pages_in_window = 0, last_attempt_at = now()
   where t.connection_id = connection and t.endpoint = endpoint_path
  returning t.* into s;
  return query select s.sync_id, s.window_start, s.window_end, s.next_page, s.pages_in_window, false;
end
$$;
comment on function private.begin_provider_sync_window(uuid, text, timestamptz, timestamptz) is
  'The report window in progress for a connection and endpoint (resumed: its sync id and cursor), else a new one over the given range.';

-- ---------------------------------------------------------------- store one page
-- usage_rows / cost_rows: JSON arrays of normalized rows (amounts as decimal strings, so none is rounded
-- through a float). Rows sharing a natural key within the page are summed: a report may split a group.
create function private.store_provider_report_page(
  connection uuid, endpoint_path text, page_sync_id uuid, params jsonb, page_cursor text, body jsonb,
  next_page text, has_more boolean, bucket_width text, usage_rows jsonb, cost_rows jsonb)
returns boolean
language plpgsql volatile set search_path = '' as $$
declare
  s private.provider_sync_state;
  c public.provider_connections;
  done boolean := not coalesce(has_more, false) or next_page is null;
begin
  select * into s from private.provider_sync_state t
   where t.connection_id = connection and t.endpoint = endpoint_path for update;
  if s.sync_id is distinct from page_sync_id then
    raise exception 'sync_id: the window % of % is no longer in progress (another run finished or replaced it)',
      page_sync_id, endpoint_path using errcode = '40001';
  end if;
  select * into c from public.provider_connections x where x.id = connection;

  insert into private.provider_report_pages (org_id, connection_id, endpoint, params, page_cursor, next_page,
                                             has_more, sync_id, body)
  values (c.org_id, connection, endpoint_path, params, page_cursor, next_page, coalesce(has_more, false),
          page_sync_id, body);

  -- Each distinct model of the page is resolved once (materialized: not once per row).
  with models as materialized (
    select m.model, private.canonical_model(c.provider, m.model, c.org_id) as canonical_model
      from (select distinct r.model from jsonb_to_recordset(coalesce(usage_rows, '[]')) as r (model text)
             where r.model is not null) m)
  insert into private.provider_billed_usage as u (
    org_id, connection_id, provider, endpoint, bucket_start, bucket_end, bucket_width, model, project_id, api_key_id,
    service_tier, batch, context_window, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_5m_tokens,
    cache_write_1h_tokens, output_tokens, reasoning_tokens, input_audio_tokens, output_audio_tokens, requests,
    web_search_requests, sync_id, canonical_model)
  select c.org_id, connection, c.provider, endpoint_path, r.bucket_start, max(r.bucket_end), bucket_width, r.model,
         r.project_id, r.api_key_id, r.service_tier, r.batch, r.context_window,
         coalesce(sum(r.input_tokens), 0), coalesce(sum(r.cached_input_tokens), 0),
         coalesce(sum(r.cache_write_tokens), 0), coalesce(sum(r.cache_write_5m_tokens), 0),
         coalesce(sum(r.cache_write_1h_tokens), 0), coalesce(sum(r.output_tokens), 0), sum(r.reasoning_tokens),
         coalesce(sum(r.input_audio_tokens), 0), coalesce(sum(r.output_audio_tokens), 0), sum(r.requests),
         coalesce(sum(r.web_search_requests), 0), page_sync_id,
         (select m.canonical_model from models m where m.model = r.model)
    from jsonb_to_recordset(coalesce(usage_rows, '[]')) as r (
           bucket_start timestamptz, bucket_end timestamptz, model text, project_id text, api_key_id text,
           service_tier text, batch boolean, context_window text, input_tokens bigint, cached_input_tokens bigint,
           cache_write_tokens bigint, cache_write_5m_tokens bigint, cache_write_1h_tokens bigint,
           output_tokens bigint, reasoning_tokens bigint, input_audio_tokens bigint, output_audio_tokens bigint,
           requests bigint, web_search_requests bigint)
   group by r.bucket_start, r.model, r.project_id, r.api_key_id, r.service_tier, r.batch, r.context_window
  on conflict on constraint provider_billed_usage_natural_key do update
     set bucket_end = excluded.bucket_end, input_tokens = excluded.input_tokens,
         cached_input_tokens = excluded.cached_input_tokens, cache_write_tokens = excluded.cache_write_tokens,
         cache_write_5m_tokens = excluded.cache_write_5m_tokens, cache_write_1h_tokens = excluded.cache_write_1h_tokens,
         output_tokens = excluded.output_tokens, reasoning_tokens = excluded.reasoning_tokens,
         input_audio_tokens = excluded.input_audio_tokens, output_audio_tokens = excluded.output_audio_tokens,
         requests = excluded.requests, web_search_requests = excluded.web_search_requests,
         canonical_model = excluded.canonical_model, sync_id = excluded.sync_id, synced_at = now();

  with models as materialized (
    select m.model, private.canonical_model(c.provider, m.model, c.org_id) as canonical_model
      from (select distinct r.model from jsonb_to_recordset(coalesce(cost_rows, '[]')) as r (model text)
             where r.model is not null) m)
  insert into private.provider_billed_cost as k (
    org_id, connection_id, provider, endpoint, bucket_start, bucket_end, bucket_width, line_item, project_id, model,
    cost_type, token_type, service_tier, context_window, currency, amount, sync_id, canonical_model)
  select c.org_id, connection, c.provider, endpoint_path, r.bucket_start, max(r.bucket_end), bucket_width, r.line_item,
         r.project_id, r.model, r.cost_type, r.token_type, r.service_tier, r.context_window,
         lower(coalesce(r.currency, 'usd')), sum(r.amount::numeric), page_sync_id,
         (select m.canonical_model from models m where m.model = r.model)
    from jsonb_to_recordset(coalesce(cost_rows, '[]')) as r (
           bucket_start timestamptz, bucket_end timestamptz, line_item text, project_id text, model text,
           cost_type text, token_type text, service_tier text, context_window text, currency text, amount text)
   group by r.bucket_start, r.line_item, r.project_id, r.model, r.cost_type, r.token_type, r.service_tier,
            r.context_window, lower(coalesce(r.currency, 'usd'))
  on conflict on constraint provider_billed_cost_natural_key do update
     set bucket_end = excluded.bucket_end, amount = excluded.amount, canonical_model = excluded.canonical_model,
         sync_id = excluded.sync_id, synced_at = now();

  if not done then
    update private.provider_sync_state t
       set next_page = store_provider_report_page.next_page, pages_in_window = t.pages_in_window + 1,
           last_attempt_at = now()
     where t.connection_id = connection and t.endpoint = endpoint_path;
    return false;
  end if;

  -- The window is complete: what it no longer reports is gone (a group the provider revised away).
  delete from private.provider_billed_usage u
   where u.connection_id = connection and u.endpoint = endpoint_path
     and u.bucket_start >= s.window_start and u.bucket_start < s.window_end and u.sync_id <> page_sync_id;
  delete from private.provider_billed_cost k
   where k.connection_id = connection and k.endpoint = endpoint_path
     and k.bucket_start >= s.window_start and k.bucket_start < s.window_end and k.sync_id <> page_sync_id;
  update private.provider_sync_state t
     set synced_through = greatest(t.synced_through, s.window_end), window_start = null, window_end = null,
         sync_id = null, next_page = null, pages_in_window = 0, last_attempt_at = now(), last_success_at = now(),
         last_error = null, last_error_at = null, consecutive_failures = 0
   where t.connection_id = connection and t.endpoint = endpoint_path;
  return true;
end
$$;
comment on function private.store_provider_report_page(uuid, text, uuid, jsonb, text, jsonb, text, boolean, text, jsonb, jsonb) is
  'Store one report page whole: raw body, normalized rows upserted on their natural key, the cursor; true when it completed its window.';

-- ---------------------------------------------------------------- failures
create function private.record_provider_sync_error(connection uuid, endpoint_path text, message text)
returns void
language plpgsql volatile set search_path = '' as $$
declare
  org uuid;
begin
  select c.org_id into org from public.provider_connections c where c.id = connection;
  if org is null then
    return;  -- the connection was removed meanwhile: nothing left to report on
  end if;
  insert into private.provider_sync_state as t (connection_id, org_id, endpoint, last_attempt_at, last_error,
                                                last_error_at, consecutive_failures)
  values (connection, org, endpoint_path, now(), left(message, 2000), now(), 1)
  on conflict on constraint provider_sync_state_pkey do update
     set last_attempt_at = now(), last_error = left(message, 2000), last_error_at = now(),
         consecutive_failures = t.consecutive_failures + 1;
end
$$;
comment on function private.record_provider_sync_error(uuid, text, text) is
  'Note a failed sync attempt of a connection''s endpoint (the window in progress, if any, keeps its cursor).';

-- ---------------------------------------------------------------- retention of raw pages
create function private.prune_provider_report_pages(keep interval)
returns bigint
language sql volatile set search_path = '' as $$
  with gone as (delete from private.provider_report_pages p where p.fetched_at < now() - keep returning 1)
  select count(*) from gone
$$;
comment on function private.prune_provider_report_pages(interval) is
  'Delete raw report pages fetched longer ago than keep; returns how many.';

revoke all on function private.begin_provider_sync_window(uuid, text, timestamptz, timestamptz),
  private.store_provider_report_page(uuid, text, uuid, jsonb, text, jsonb, text, boolean, text, jsonb, jsonb),
  private.record_provider_sync_error(uuid, text, text), private.prune_provider_report_pages(interval) from public;
grant execute on function private.begin_provider_sync_window(uuid, text, timestamptz, timestamptz),
  private.store_provider_report_page(uuid, text, uuid, jsonb, text, jsonb, text, boolean, text, jsonb, jsonb),
  private.record_provider_sync_error(uuid, text, text), private.prune_provider_report_pages(interval) to service_role;
