-- One identity per model: a success stored under the snapshot the response named (gpt-4o-2024-08-06)
-- and a failure under the model requested (gpt-4o) share canonical_model, so error rates by model are
-- right in the raw rows, the read views (raw tail, pending deltas, materialized buckets) and /costs.
begin;
select plan(12);

insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000ca001', 'canonical-a');

-- Three successes answered as the dated snapshot, one failure as requested; one late failure below
-- the watermark; an unknown private deployment under two spellings. Through the real ingest path.
select private.ingest_events('00000000-0000-4000-8000-0000000ca001', null, null, jsonb_agg(e))
from (
  select jsonb_build_object('idx', i, 'request_id', 'canon-' || i, 'source', 'sdk', 'provider', p, 'model', m,
                            'input_tokens', 100, 'output_tokens', case when s = 'success' then 20 else 0 end,
                            'cached_tokens', 0, 'cache_write_tokens', 0, 'reasoning_tokens', 0, 'status', s,
                            'retry_count', 0, 'is_timeout', false, 'is_rate_limited', false, 'is_streaming', false,
                            'cache_hit', false, 'metadata', '{}'::jsonb, 'occurred_at', now() - a,
                            'content_hash', md5('canon-' || i)) as e
  from (values (1, 'openai', 'gpt-4o-2024-08-06', 'success', interval '2 hours'),
               (2, 'openai', 'gpt-4o-2024-08-06', 'success', interval '2 hours'),
               (3, 'openai', 'gpt-4o-2024-08-06', 'success', interval '90 minutes'),
               (4, 'openai', 'gpt-4o', 'error', interval '2 hours'),
               (5, 'acme-gpu', 'acme/support-llm-2025-10-01', 'success', interval '2 hours'),
               (6, 'acme-gpu', 'Support-LLM', 'timeout', interval '2 hours')) v(i, p, m, s, a)
) x;

-- the snapshot and the bare name resolve to one canonical model; model keeps what was sent
select results_eq(
  $$ select model, canonical_model from public.usage_records
      where org_id = '00000000-0000-4000-8000-0000000ca001' and provider = 'openai' order by request_id $$,
  $$ values ('gpt-4o-2024-08-06', 'gpt-4o'), ('gpt-4o-2024-08-06', 'gpt-4o'), ('gpt-4o-2024-08-06', 'gpt-4o'),
            ('gpt-4o', 'gpt-4o') $$,
  'usage rows keep the name as sent and carry the model the price resolves to');
-- names nothing prices: vendor prefix, case and snapshot date do not split a model
select results_eq(
  $$ select distinct canonical_model from public.usage_records
      where org_id = '00000000-0000-4000-8000-0000000ca001' and provider = 'acme-gpu' $$,
  $$ values ('support-llm') $$,
  'an unpriced model is normalised to one name');
-- the documented key for routing and reconciliation agrees with what ingest stored
select is(private.canonical_model('openai', 'gpt-4o-2024-08-06'), 'gpt-4o', 'canonical_model() of a snapshot');
select is(private.canonical_model('OpenAI', 'openai/gpt-4o'), 'gpt-4o', 'canonical_model() of a prefixed name');
select is(private.canonical_model('acme-gpu', 'Support-LLM-20251001'), 'support-llm',
          'canonical_model() of an unknown name');

-- the error rate: 1 failure of 4 calls is 25%, not 100% for gpt-4o and 0% for the snapshot
create temp view canon_rate as
  select canonical_model, sum(requests)::bigint as requests, sum(errors)::bigint as errors,
         round(100.0 * sum(errors) / sum(requests), 2) as error_rate_pct
    from analytics.usage_daily where org_id = '00000000-0000-4000-8000-0000000ca001'
   group by canonical_model;
select results_eq($$ select canonical_model, requests, errors, error_rate_pct from canon_rate order by 1 $$,
                  $$ values ('gpt-4o', 4::bigint, 1::bigint, 25.00), ('support-llm', 2::bigint, 1::bigint, 50.00) $$,
                  'error rate per canonical model from the raw tail');

-- after the rollups materialize the rows, and with a late failure waiting as a delta
select private.refresh_usage_rollups(now(), null);
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, input_tokens)
values ('00000000-0000-4000-8000-0000000ca001', now() - interval '3 hours', 'canon-late', 'openai', 'gpt-4o', 'error', 10);
select is((select count(*)::int from private.usage_rollup_deltas
            where org_id = '00000000-0000-4000-8000-0000000ca001' and canonical_model = 'gpt-4o'), 1,
          'a late row waits as a delta under its canonical model');
select results_eq($$ select canonical_model, requests, errors, error_rate_pct from canon_rate order by 1 $$,
                  $$ values ('gpt-4o', 5::bigint, 2::bigint, 40.00), ('support-llm', 2::bigint, 1::bigint, 50.00) $$,
                  'error rate per canonical model from materialized buckets and pending deltas');
select private.refresh_usage_rollups(now(), null);
select results_eq(
  $$ select canonical_model, sum(requests)::bigint from private.usage_rollup_daily
      where org_id = '00000000-0000-4000-8000-0000000ca001' group by 1 order by 1 $$,
  $$ values ('gpt-4o', 5::bigint), ('support-llm', 2::bigint) $$,
  'the daily rollup is keyed by canonical model');

-- /costs groups and filters by it
select results_eq(
  $$ select e ->> 'canonical_model', (e ->> 'total_requests')::int, (e ->> 'total_errors')::int
       from jsonb_array_elements(public.cost_breakdown(current_date - 1, current_date, array['canonical_model'],
                                                       org => '00000000-0000-4000-8000-0000000ca001') -> 'data') e
      order by 1 $$,
  $$ values ('gpt-4o', 5, 2), ('support-llm', 2, 1) $$,
  'cost_breakdown groups by canonical_model');
select results_eq(
  $$ select e ->> 'model', (e ->> 'total_requests')::int
       from jsonb_array_elements(public.cost_breakdown(current_date - 1, current_date, array['model'],
                                                       org => '00000000-0000-4000-8000-0000000ca001',
                                                       canonical_model => 'gpt-4o') -> 'data') e
      order by 1 $$,
  $$ values ('gpt-4o', 2), ('gpt-4o-2024-08-06', 3) $$,
  'cost_breakdown filters by canonical_model');
-- the renamed counter and its deprecated alias carry the same value
select is(
  (select (e ->> 'total_response_cache_hits') = (e ->> 'total_cache_hits')
     from jsonb_array_elements(public.cost_breakdown(current_date - 1, current_date,
                                                     org => '00000000-0000-4000-8000-0000000ca001') -> 'data') e),
  true, 'total_response_cache_hits and its deprecated alias total_cache_hits agree');

select * from finish();
rollback;
