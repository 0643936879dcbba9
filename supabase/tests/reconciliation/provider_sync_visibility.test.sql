-- What the provider billing sync tells about itself: the raw pages' column says what jsonb keeps of a page;
-- cost lines in another currency than USD, which the reconciliation leaves out, are counted in the status.
begin;
select plan(5);

select ok(col_description('private.provider_report_pages'::regclass,
                          (select attnum from pg_attribute where attrelid = 'private.provider_report_pages'::regclass
                              and attname = 'body')) like '%key order%not preserved%',
          'the raw page''s column says its key order is not kept');
select isnt('{"b": 1, "a": 2}'::jsonb::text, '{"b": 1, "a": 2}',
            '... which is what jsonb does to a page (so the comment must not promise the page unchanged)');


-- ---------------------------------------------------------------- a cost line in euros
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000c2001', 'sync-visibility');
insert into public.provider_connections (id, org_id, provider, name, key_hint, ciphertext, wrapped_key) values
  ('00000000-0000-0000-0000-0000000c2c01', '00000000-0000-0000-0000-0000000c2001', 'openai', 'default', 'abcd', 'x', 'y');
insert into private.provider_admin_keys (connection_id, org_id, key_hint, ciphertext, wrapped_key) values
  ('00000000-0000-0000-0000-0000000c2c01', '00000000-0000-0000-0000-0000000c2001', 'adm1', 'x', 'y');
select private.store_provider_report_page('00000000-0000-0000-0000-0000000c2c01', 'organization/costs',
  (select sync_id from private.begin_provider_sync_window('00000000-0000-0000-0000-0000000c2c01', 'organization/costs',
                                                          '2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z')),
  '{}', null, '{"data": []}', null, false, '1d',
  '[]', '[{"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "line_item": "gpt-4o, input", "cost_type": "tokens",
           "currency": "usd", "amount": "1.50"},
          {"bucket_start": "2026-11-01T00:00:00Z", "bucket_end": "2026-11-02T00:00:00Z", "line_item": "gpt-4o, output", "cost_type": "tokens",
           "currency": "eur", "amount": "2.00"}]');
select is((select sum(amount_usd) from private.provider_billed_cost_daily
            where connection_id = '00000000-0000-0000-0000-0000000c2c01'), 1.50,
          'the daily cost (and so the reconciliation) sums the USD line only');
select is((select (non_usd_cost_lines, non_usd_currencies)
             from private.provider_sync_status('00000000-0000-0000-0000-0000000c2001')
            where endpoint = 'organization/costs'), (1, array['eur']),
          'the euro line is counted, with its currency, in the sync status');
select is((select (non_usd_cost_lines, non_usd_currencies)
             from private.provider_sync_status('00000000-0000-0000-0000-0000000c2001')
            where endpoint = 'organization/usage/completions'), (0, '{}'::text[]),
          '... and nothing on an endpoint without one');

select * from finish();
rollback;
