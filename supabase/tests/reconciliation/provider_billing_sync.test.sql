-- The provider billing sync's SQL: pages stored whole through their window, upserts on the natural key
-- (a re-sync replaces, rows of one page sharing a key are summed, null breakdowns are one key), a completed
-- window drops what the provider stopped reporting, a stale sync id is refused, the daily views add hourly
-- buckets into UTC days with the cache-write TTLs and cents converted, and no user role reads any of it.
begin;
select plan(27);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000b5001', 'billing-sync');
insert into public.provider_connections (id, org_id, provider, name, key_hint, ciphertext, wrapped_key) values
  ('00000000-0000-0000-0000-0000000b5c01', '00000000-0000-0000-0000-0000000b5001', 'anthropic', 'default', 'abcd',
   'x', 'y'),
  ('00000000-0000-0000-0000-0000000b5c02', '00000000-0000-0000-0000-0000000b5001', 'openai', 'default', 'efgh',
   'x', 'y');

-- ---------------------------------------------------------------- a window of two pages
create temporary table w on commit drop as
select * from private.begin_provider_sync_window('00000000-0000-0000-0000-0000000b5c01',
  'organizations/usage_report/messages', '2026-11-01T00:00:00Z', '2026-11-03T00:00:00Z');
select is((select resumed from w), false, 'a first window is new');
select is((select resumed from private.begin_provider_sync_window('00000000-0000-0000-0000-0000000b5c01',
             'organizations/usage_report/messages', '2026-11-02T00:00:00Z', '2026-11-04T00:00:00Z')), true,
          'a window in progress is resumed, not replaced');

-- page 1: two hourly buckets of one day, the same key twice in the second (summed), a null workspace
select is(private.store_provider_report_page('00000000-0000-0000-0000-0000000b5c01',
  'organizations/usage_report/messages', (select sync_id from w), '{"bucket_width": "1h"}', null, '{"data": []}',
  'cursor-2', true, '1h',
  '[{"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-01T01:00:00Z", "model": "claude-sonnet-4-5-20250929",
     "api_key_id": "k1", "input_tokens": 100, "cached_input_tokens": 10, "cache_write_tokens": 7,
     "cache_write_5m_tokens": 5, "cache_write_1h_tokens": 2, "output_tokens": 50, "web_search_requests": 1},
    {"bucket_start": "2026-11-01T23:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "model": "claude-sonnet-4-5-20250929",
     "api_key_id": "k1", "input_tokens": 1, "cache_write_tokens": 3, "cache_write_5m_tokens": 0,
     "cache_write_1h_tokens": 3, "output_tokens": 2},
    {"bucket_start": "2026-11-01T23:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "model": "claude-sonnet-4-5-20250929",
     "api_key_id": "k1", "input_tokens": 4, "output_tokens": 8}]', '[]'), false,
  'a page with more to come does not complete its window');
select is((select (next_page, pages_in_window) from private.provider_sync_state
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'), ('cursor-2'::text, 1),
          'the cursor is saved with the page');
select is((select count(*)::int from private.provider_billed_usage
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'), 2, 'rows of one key in a page are one row');
select is((select input_tokens from private.provider_billed_usage
            where connection_id = '00000000-0000-0000-0000-0000000b5c01' and bucket_start = '2026-11-01T23:00:00Z'),
          5::bigint, '... whose counts are summed');

-- a stale sync id (another run took the window over) is refused, and nothing of its page is kept
select throws_ok($$ select private.store_provider_report_page('00000000-0000-0000-0000-0000000b5c01',
  'organizations/usage_report/messages', gen_random_uuid(), '{}', 'cursor-2', '{"data": []}', null, false, '1h',
  '[]', '[]') $$, '40001', null, 'a page of a window no longer in progress is refused');

-- page 2 (last): the next day
select is(private.store_provider_report_page('00000000-0000-0000-0000-0000000b5c01',
  'organizations/usage_report/messages', (select sync_id from w), '{"bucket_width": "1h"}', 'cursor-2',
  '{"data": [1]}', null, false, '1h',
  '[{"bucket_start": "2026-11-02T05:00:00Z", "bucket_end": "2026-11-02T06:00:00Z", "model": "claude-sonnet-4-5-20250929",
     "api_key_id": "k1", "input_tokens": 1000}]', '[]'), true, 'the last page completes the window');
select is((select (synced_through, sync_id, next_page, last_success_at is not null) from private.provider_sync_state
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'),
          ('2026-11-03T00:00:00Z'::timestamptz, null::uuid, null::text, true), 'the window is marked synced');
select is((select count(*)::int from private.provider_report_pages
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'), 2, 'both raw pages are kept');

-- ---------------------------------------------------------------- the daily view's arithmetic
select results_eq($$
  select day, canonical_model, input_tokens, cached_input_tokens, cache_write_tokens, cache_write_5m_tokens,
         cache_write_1h_tokens, output_tokens, web_search_requests, reasoning_tokens, requests
    from private.provider_billed_usage_daily where connection_id = '00000000-0000-0000-0000-0000000b5c01' order by day $$,
  $$ values ('2026-11-01'::date, private.canonical_model('anthropic', 'claude-sonnet-4-5-20250929',
                                                         '00000000-0000-0000-0000-0000000b5001'),
             105::bigint, 10::bigint, 10::bigint, 5::bigint, 5::bigint, 60::bigint, 1::bigint, null::bigint, null::bigint),
            ('2026-11-02'::date, private.canonical_model('anthropic', 'claude-sonnet-4-5-20250929',
                                                         '00000000-0000-0000-0000-0000000b5001'),
             1000::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, null::bigint, null::bigint) $$,
  'hourly buckets add up to UTC days, cache writes are the sum of their TTLs');
select isnt((select canonical_model from private.provider_billed_usage_daily
              where connection_id = '00000000-0000-0000-0000-0000000b5c01' limit 1), null,
            'the canonical model is resolved');

-- ---------------------------------------------------------------- a re-sync replaces
create temporary table w2 on commit drop as
select * from private.begin_provider_sync_window('00000000-0000-0000-0000-0000000b5c01',
  'organizations/usage_report/messages', '2026-11-01T00:00:00Z', '2026-11-03T00:00:00Z');
select isnt((select sync_id from w2), (select sync_id from w), 'a new window gets a new sync id');
-- the provider now reports day 1's first hour revised, the 23:00 group gone, day 2 unchanged
select is(private.store_provider_report_page('00000000-0000-0000-0000-0000000b5c01',
  'organizations/usage_report/messages', (select sync_id from w2), '{}', null, '{"data": []}', null, false, '1h',
  '[{"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-01T01:00:00Z", "model": "claude-sonnet-4-5-20250929",
     "api_key_id": "k1", "input_tokens": 120, "output_tokens": 50},
    {"bucket_start": "2026-11-02T05:00:00Z", "bucket_end": "2026-11-02T06:00:00Z", "model": "claude-sonnet-4-5-20250929",
     "api_key_id": "k1", "input_tokens": 1000}]', '[]'), true, 'a one-page re-sync completes');
select is((select count(*)::int from private.provider_billed_usage
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'), 2,
          're-syncing replaces rows on their natural key, and drops the group no longer reported');
select is((select sum(input_tokens)::int from private.provider_billed_usage_daily
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'), 1120, 'the revised counts are the ones kept');
select is((select count(distinct sync_id)::int from private.provider_billed_usage
            where connection_id = '00000000-0000-0000-0000-0000000b5c01'), 1, 'every row is the re-sync''s');

-- ---------------------------------------------------------------- cost lines
create temporary table wc on commit drop as
select * from private.begin_provider_sync_window('00000000-0000-0000-0000-0000000b5c01',
  'organizations/cost_report', '2026-11-01T00:00:00Z', '2026-11-03T00:00:00Z');
select is(private.store_provider_report_page('00000000-0000-0000-0000-0000000b5c01', 'organizations/cost_report',
  (select sync_id from wc), '{}', null, '{"data": []}', null, false, '1d',
  '[]',
  '[{"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "line_item": "Sonnet input",
     "project_id": null, "model": "claude-sonnet-4-5-20250929", "cost_type": "tokens", "token_type": "uncached_input_tokens",
     "service_tier": "standard", "context_window": "0-200k", "currency": "USD", "amount": "1.234567891234"},
    {"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "line_item": "Sonnet input",
     "project_id": null, "model": "claude-sonnet-4-5-20250929", "cost_type": "tokens", "token_type": "uncached_input_tokens",
     "service_tier": "standard", "context_window": "0-200k", "currency": "usd", "amount": "0.000000000001"},
    {"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "line_item": "Web Search",
     "project_id": "wrkspc_1", "model": null, "cost_type": "web_search", "currency": "usd", "amount": "0.01"}]'),
  true, 'a cost page is stored');
select results_eq($$ select line_item, cost_type, amount_usd, canonical_model is null
                       from private.provider_billed_cost_daily
                      where connection_id = '00000000-0000-0000-0000-0000000b5c01' order by line_item $$,
                  $$ values ('Sonnet input'::text, 'tokens'::text, 1.234567891235::numeric, false),
                            ('Web Search', 'web_search', 0.01, true) $$,
                  'cost lines are summed exactly per key (currency case folded); a line not per model has no canonical model');

-- ---------------------------------------------------------------- failures and the natural key's nulls
select lives_ok($$ select private.record_provider_sync_error('00000000-0000-0000-0000-0000000b5c02',
                     'organization/costs', 'openai organization/costs: HTTP 401 invalid_request_error') $$,
                'a failure is recorded on an endpoint never synced');
select is((select (last_error, consecutive_failures, synced_through) from private.provider_sync_state
            where connection_id = '00000000-0000-0000-0000-0000000b5c02'),
          ('openai organization/costs: HTTP 401 invalid_request_error'::text, 1, null::timestamptz),
          'with its message and count');
select throws_ok($$ insert into private.provider_billed_usage (org_id, connection_id, provider, endpoint, bucket_start,
                      bucket_end, bucket_width, model, api_key_id, sync_id)
                    select org_id, connection_id, provider, endpoint, bucket_start, bucket_end, bucket_width, model,
                           api_key_id, gen_random_uuid()
                      from private.provider_billed_usage where bucket_start = '2026-11-02T05:00:00Z' $$,
                 '23505', null, 'null breakdowns are one natural key (nulls not distinct)');

-- ---------------------------------------------------------------- sync status
insert into private.provider_admin_keys (connection_id, org_id, key_hint, ciphertext, wrapped_key) values
  ('00000000-0000-0000-0000-0000000b5c01', '00000000-0000-0000-0000-0000000b5001', 'adm1', 'x', 'y'),
  ('00000000-0000-0000-0000-0000000b5c02', '00000000-0000-0000-0000-0000000b5001', 'adm2', 'x', 'y');
select is((select count(*)::int from private.provider_sync_status('00000000-0000-0000-0000-0000000b5001')), 5,
          'the status lists every report endpoint of each connection with an admin key, synced or not');
select is((select (synced_through, in_progress, last_error) from private.provider_sync_status('00000000-0000-0000-0000-0000000b5001')
            where endpoint = 'organizations/usage_report/messages'),
          ('2026-11-03T00:00:00Z'::timestamptz, false, null::text), 'a synced endpoint shows how far');
select is((select (synced_through, consecutive_failures) from private.provider_sync_status('00000000-0000-0000-0000-0000000b5001')
            where endpoint = 'organization/usage/embeddings'),
          (null::timestamptz, 0), 'an endpoint never tried shows nothing synced');

-- ---------------------------------------------------------------- no user role reads it
select tests.create_user('billing-sync-owner');
insert into public.organization_members (org_id, user_id, role)
values ('00000000-0000-0000-0000-0000000b5001', tests.uid('billing-sync-owner'), 'owner');
select tests.authenticate_as('billing-sync-owner');
select throws_ok($$ select count(*) from private.provider_billed_usage_daily $$, '42501', null,
                 'an owner cannot read the billed usage');
select throws_ok($$ select count(*) from private.provider_report_pages $$, '42501', null,
                 'nor the raw pages');
select tests.clear_authentication();

select * from finish();
rollback;
