-- The cause rules, one planted gap each on a day of its own: tracked rows priced as ingest prices them,
-- billed rows as the provider sync writes them; every gap named with its amount, and the amounts of a
-- day adding up to its gap.
begin;
select plan(16);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000cc001', 'recon');
insert into public.provider_connections (id, org_id, provider, ciphertext, wrapped_key) values
  ('00000000-0000-0000-0000-0000000cc0a1', '00000000-0000-0000-0000-0000000cc001', 'openai', '\x01', '\x02'),
  ('00000000-0000-0000-0000-0000000cc0a2', '00000000-0000-0000-0000-0000000cc001', 'anthropic', '\x01', '\x02');
insert into private.provider_admin_keys (connection_id, org_id, key_hint, ciphertext, wrapped_key)
select id, org_id, 'abcd', '\x01', '\x02' from public.provider_connections
 where org_id = '00000000-0000-0000-0000-0000000cc001';

-- n tracked calls of one shape, priced as ingest prices them
create function pg_temp.track(provider text, day date, model text, n integer, inp bigint, cached bigint, outp bigint,
                              tier text default null, at time default '12:00') returns void
language sql as $$
  insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, cached_tokens,
                                    output_tokens, service_tier, cost_usd, price_id, price_model, priced)
  select '00000000-0000-0000-0000-0000000cc001', (day + at) at time zone 'UTC', gen_random_uuid()::text, provider,
         model, inp, cached, outp, tier, c.cost_usd, c.price_id, c.price_model, c.cost_usd is not null
    from generate_series(1, n) i
    left join lateral private.org_usage_cost('00000000-0000-0000-0000-0000000cc001', provider, model,
                                             (day + at) at time zone 'UTC', inp, outp, cached, 0, 0, tier) c on true
$$;
-- an OpenAI report row and its cost lines at the given prices (USD per million tokens)
create function pg_temp.bill(day date, model text, key text, inp bigint, cached bigint, outp bigint, pin numeric,
                             pcached numeric, pout numeric, batch boolean default false, cents boolean default false)
returns void language sql as $$
  insert into private.provider_billed_usage (org_id, connection_id, provider, endpoint, bucket_start, bucket_end,
         bucket_width, model, canonical_model, api_key_id, project_id, batch, service_tier, input_tokens,
         cached_input_tokens, output_tokens, requests, sync_id)
  values ('00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc0a1', 'openai',
          'organization/usage/completions', day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC',
          '1d', model, private.canonical_model('openai', model), key, 'proj_main', batch, 'default', inp, cached,
          outp, 1, gen_random_uuid());
  insert into private.provider_billed_cost (org_id, connection_id, provider, endpoint, bucket_start, bucket_end,
         bucket_width, line_item, project_id, model, canonical_model, cost_type, token_type, amount, sync_id)
  select '00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc0a1', 'openai', 'organization/costs',
         day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC', '1d',
         model || ', ' || t || case when batch then ' (batch)' else '' end || ' ' || key, 'proj_main', model,
         private.canonical_model('openai', model), 'tokens',
         t || case when batch then ' (batch)' else '' end, case when cents then round(amt, 2) else amt end,
         gen_random_uuid()
    from (values ('input', inp * pin / 1e6), ('cached input', cached * pcached / 1e6), ('output', outp * pout / 1e6)) v (t, amt)
   where amt > 0
$$;
create function pg_temp.cause(day date, model text, cause text) returns numeric language sql as $$
  select coalesce(sum(c.amount_usd), 0) from private.reconciliation_causes c
   where c.org_id = '00000000-0000-0000-0000-0000000cc001' and c.day = cause.day
     and c.canonical_model is not distinct from cause.model and c.cause = cause.cause
$$;

-- untracked traffic (day 2): a key we never see, with the same cache profile as the tracked traffic
select pg_temp.track('openai', '2026-11-02', 'gpt-4o', 10, 100000, 20000, 10000);
select pg_temp.bill('2026-11-02', 'gpt-4o', 'key_app', 800000, 200000, 100000, 2.5, 1.25, 10);
select pg_temp.bill('2026-11-02', 'gpt-4o', 'key_shadow', 240000, 60000, 30000, 2.5, 1.25, 10);
-- cache accounting (day 6): the SDK reported no cache reads
select pg_temp.track('openai', '2026-11-06', 'gpt-4o', 10, 100000, 0, 10000);
select pg_temp.bill('2026-11-06', 'gpt-4o', 'key_app', 800000, 200000, 100000, 2.5, 1.25, 10);
-- batch (day 8): batch calls tracked without their tier
select pg_temp.track('openai', '2026-11-08', 'gpt-4o-mini', 10, 100000, 0, 10000);
select pg_temp.bill('2026-11-08', 'gpt-4o-mini', 'key_app', 1000000, 0, 100000, 0.075, 0.075, 0.3, batch => true);
-- unpriced (day 10): a model our price table does not know
select pg_temp.track('openai', '2026-11-10', 'gpt-7-preview', 5, 10000, 0, 1000);
select pg_temp.bill('2026-11-10', 'gpt-7-preview', 'key_app', 50000, 0, 5000, 4, 2, 16);
-- rounding (day 16): billed lines rounded to the cent
select pg_temp.track('openai', '2026-11-16', 'gpt-4o', 3, 12345, 0, 678);
select pg_temp.bill('2026-11-16', 'gpt-4o', 'key_app', 37035, 0, 2034, 2.5, 1.25, 10, cents => true);
-- timing (days 18, 19): two calls started before midnight, billed the next day
select pg_temp.track('openai', '2026-11-18', 'gpt-4.1', 5, 10000, 0, 1000);
select pg_temp.track('openai', '2026-11-18', 'gpt-4.1', 2, 10000, 0, 1000, at => '23:59:30');
select pg_temp.track('openai', '2026-11-19', 'gpt-4.1', 5, 10000, 0, 1000);
select pg_temp.bill('2026-11-18', 'gpt-4.1', 'key_app', 50000, 0, 5000, 2, 0.5, 8);
select pg_temp.bill('2026-11-19', 'gpt-4.1', 'key_app', 70000, 0, 7000, 2, 0.5, 8);
-- price change (day 20): the provider bills 20% more than our price table says
select pg_temp.track('openai', '2026-11-20', 'gpt-4o', 10, 100000, 20000, 10000);
select pg_temp.bill('2026-11-20', 'gpt-4o', 'key_app', 800000, 200000, 100000, 3.0, 1.5, 12);
-- long context (day 12): calls above 200k to a model whose premium our table lacks (2x input, 1.5x output)
select pg_temp.track('anthropic', '2026-11-12', 'claude-sonnet-4-20250514', 2, 300000, 0, 1000);
insert into private.provider_billed_usage (org_id, connection_id, provider, endpoint, bucket_start, bucket_end,
       bucket_width, model, canonical_model, api_key_id, project_id, service_tier, context_window, input_tokens,
       output_tokens, sync_id)
values ('00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc0a2', 'anthropic',
        'organizations/usage_report/messages', '2026-11-12 00:00+00', '2026-11-13 00:00+00', '1d',
        'claude-sonnet-4-20250514', 'claude-sonnet-4-0', 'apikey_01', 'wrkspc_01', 'standard', '200k-1M', 600000, 2000, gen_random_uuid());
insert into private.provider_billed_cost (org_id, connection_id, provider, endpoint, bucket_start, bucket_end,
       bucket_width, line_item, project_id, model, canonical_model, cost_type, token_type, service_tier, context_window,
       amount, sync_id)
values ('00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc0a2', 'anthropic',
        'organizations/cost_report', '2026-11-12 00:00+00', '2026-11-13 00:00+00', '1d', 'Sonnet 4 input', 'wrkspc_01',
        'claude-sonnet-4-20250514', 'claude-sonnet-4-0', 'tokens', 'uncached_input_tokens', 'standard', '200k-1M', 3.6, gen_random_uuid()),
       ('00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc0a2', 'anthropic',
        'organizations/cost_report', '2026-11-12 00:00+00', '2026-11-13 00:00+00', '1d', 'Sonnet 4 output', 'wrkspc_01',
        'claude-sonnet-4-20250514', 'claude-sonnet-4-0', 'tokens', 'output_tokens', 'standard', '200k-1M', 0.045, gen_random_uuid()),
-- tool fees (day 14): web searches, billed apart from any model
       ('00000000-0000-0000-0000-0000000cc001', '00000000-0000-0000-0000-0000000cc0a2', 'anthropic',
        'organizations/cost_report', '2026-11-14 00:00+00', '2026-11-15 00:00+00', '1d', 'Web Search', 'wrkspc_01',
        null, null, 'web_search', null, null, null, 0.05, gen_random_uuid());

select private.reconcile('00000000-0000-0000-0000-0000000cc001', '2026-11-01', '2026-11-30');

-- untracked traffic is the shadow key's billed cost, and named by it
select is(pg_temp.cause('2026-11-02', 'gpt-4o', 'untracked_traffic'), 0.975, 'untracked traffic: the shadow key''s cost');
select is((select details #>> '{names,0,id}' from private.reconciliation_causes
            where org_id = '00000000-0000-0000-0000-0000000cc001' and day = '2026-11-02' and cause = 'untracked_traffic'),
          'key_shadow', 'untracked traffic is named by its key');
-- cache reads counted as input: we overstated by their price difference
select is(pg_temp.cause('2026-11-06', 'gpt-4o', 'cache_accounting'), -0.25, 'cache accounting: 200k reads at 1.25 less');
-- batch calls priced at the standard rate
select is(pg_temp.cause('2026-11-08', 'gpt-4o-mini', 'batch_flex_discount'), -0.105, 'batch: half of 0.21');
-- a model we cannot price is worth what the provider bills for it
select is(pg_temp.cause('2026-11-10', 'gpt-7-preview', 'unpriced_model'), 0.28, 'unpriced model at the billed price');
-- the long-context premium our table lacks
select is(pg_temp.cause('2026-11-12', 'claude-sonnet-4-0', 'long_context'), 1.815, 'long context: 2x input, 1.5x output');
-- fees billed apart from any model
select is((select sum(amount_usd) from private.reconciliation_causes
            where org_id = '00000000-0000-0000-0000-0000000cc001' and day = '2026-11-14' and cause = 'tool_fees'),
          0.05, 'tool fees');
-- lines rounded to the cent
select is(pg_temp.cause('2026-11-16', 'gpt-4o', 'rounding'), 0.11 - 0.1129275, 'rounding of billed lines');
-- the midnight calls: a gap on one day offset by the opposite gap the next
select is(pg_temp.cause('2026-11-18', 'gpt-4.1', 'timing'), -0.056, 'timing: the day the calls started');
select is(pg_temp.cause('2026-11-19', 'gpt-4.1', 'timing'), 0.056, 'timing: the day the provider billed them');
-- a price 20% above ours
select is(pg_temp.cause('2026-11-20', 'gpt-4o', 'price_change'), 0.65, 'price change: 20% of 3.25');
-- nothing is left unexplained, and every day's causes add up to its gap
select is((select coalesce(sum(abs(amount_usd)), 0) from private.reconciliation_causes
            where org_id = '00000000-0000-0000-0000-0000000cc001' and cause = 'unexplained'), 0::numeric,
          'no planted gap is left unexplained');
select is_empty($$ select d.day from private.reconciliation_daily d
                     left join private.reconciliation_causes c using (org_id, day, provider)
                    where d.org_id = '00000000-0000-0000-0000-0000000cc001'
                      and c.canonical_model is not distinct from d.canonical_model
                    group by d.day, d.provider, d.canonical_model, d.gap_usd
                   having d.gap_usd <> coalesce(sum(c.amount_usd), 0) $$, 'causes add up to the gap of every row');
-- a day that agrees has no cause at all
select is_empty($$ select 1 from private.reconciliation_causes
                    where org_id = '00000000-0000-0000-0000-0000000cc001' and day = '2026-11-04' $$,
                'no gap, no cause');

-- the re-price takes the billed price from the day it started, and the gap is gone
select lives_ok($$ select public.reprice_from_bill('00000000-0000-0000-0000-0000000cc001', 'openai', 'gpt-4o',
                                                   '2026-11-01', '2026-11-30') $$, 're-price from the bill');
select is(pg_temp.cause('2026-11-20', 'gpt-4o', 'price_change'), 0::numeric, 'after the re-price the price gap is gone');

select * from finish();
rollback;
