-- Prices users control: an organization sets its own price for a model genai-prices cannot know (a
-- private deployment) or overrides one it knows; calls already stored are re-priced like `prices
-- sync` does, effective-dated; new calls are priced with it as they are written; no other organization
-- sees or is priced by it; only prices.write holders may set it.
begin;
select plan(16);

insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000fa001', 'prices-a'),
                                                   ('00000000-0000-4000-8000-0000000fa002', 'prices-b');
select tests.create_user(u) from unnest(array['op_admin', 'op_member', 'op_other']) u;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000fa001', tests.uid('op_admin'), 'admin'),
  ('00000000-0000-4000-8000-0000000fa001', tests.uid('op_member'), 'member'),
  ('00000000-0000-4000-8000-0000000fa002', tests.uid('op_other'), 'admin');

-- Stored calls: a private Azure deployment (unpriced), and gpt-4o snapshots priced by genai-prices;
-- organization B calls a deployment of the same name.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  cost_usd, price_id, price_model, priced)
select o, now() - a, r, p, m, 1000000, 100000, c.cost_usd, c.price_id, c.price_model, c.price_id is not null
  from (values ('00000000-0000-4000-8000-0000000fa001'::uuid, interval '3 days', 'a-dep-1', 'azure', 'acme-gpt4o-eu'),
               ('00000000-0000-4000-8000-0000000fa001'::uuid, interval '2 hours', 'a-dep-2', 'azure', 'ACME-gpt4o-eu'),
               ('00000000-0000-4000-8000-0000000fa001'::uuid, interval '3 days', 'a-4o-1', 'openai', 'gpt-4o-2024-08-06'),
               ('00000000-0000-4000-8000-0000000fa001'::uuid, interval '2 hours', 'a-4o-2', 'openai', 'gpt-4o'),
               ('00000000-0000-4000-8000-0000000fa002'::uuid, interval '2 hours', 'b-dep-1', 'azure', 'acme-gpt4o-eu')) v(o, a, r, p, m)
  left join lateral private.usage_cost(p, m, now() - a, 1000000, 100000, 0, 0, 0) c on true;

-- a member may not set prices
select tests.authenticate_as('op_member');
select throws_ok($$ select public.set_model_price('00000000-0000-4000-8000-0000000fa001', 'acme-gpt4o-eu', 2, 8) $$,
                 '42501', null, 'a member cannot set prices');
select tests.clear_authentication();

-- an admin sets a price for the deployment: both stored calls (any spelling) are priced at $2 + 0.1 * $8
select tests.authenticate_as('op_admin');
select is((public.set_model_price('00000000-0000-4000-8000-0000000fa001', ' acme-gpt4o-eu ', 2, 8,
                                  note => 'EU deployment, contract 2026') ->> 'repriced')::int, 2,
          'setting a price re-prices the stored calls it covers');
select tests.clear_authentication();
select results_eq(
  $$ select request_id, cost_usd, priced, canonical_model from public.usage_records
      where org_id = '00000000-0000-4000-8000-0000000fa001' and provider = 'azure' order by request_id $$,
  $$ values ('a-dep-1', 2.8::numeric(20, 12), true, 'acme-gpt4o-eu'), ('a-dep-2', 2.8::numeric(20, 12), true, 'acme-gpt4o-eu') $$,
  'the deployment is priced with the organization''s price and grouped under its name');
select is((select priced from public.usage_records where request_id = 'b-dep-1'), false,
          'another organization''s call of the same name stays unpriced');

-- effective-dated: a new price from a day ago re-prices the recent call only
select is((public.set_model_price('00000000-0000-4000-8000-0000000fa001', 'acme-gpt4o-eu', 1, 4,
                                  effective_from => now() - interval '1 day') ->> 'repriced')::int, 1,
          'a dated price re-prices the calls from its date on');
select results_eq(
  $$ select request_id, cost_usd from public.usage_records
      where org_id = '00000000-0000-4000-8000-0000000fa001' and provider = 'azure' order by request_id $$,
  $$ values ('a-dep-1', 2.8::numeric(20, 12)), ('a-dep-2', 1.4::numeric(20, 12)) $$,
  'calls before the date keep the earlier price');
select throws_ok($$ select public.set_model_price('00000000-0000-4000-8000-0000000fa001', 'acme-gpt4o-eu', 1, 4,
                                                  effective_from => now() - interval '1 day') $$,
                 '23505', null, 'a price set is never changed in place');
select throws_ok($$ select public.set_model_price('00000000-0000-4000-8000-0000000fa001', 'x', -1, 4) $$,
                 '22023', 'prices must not be negative', 'negative prices are refused');

-- a negotiated rate for gpt-4o from a day ago covers the dated snapshot (by canonical model)
select public.set_model_price('00000000-0000-4000-8000-0000000fa001', 'gpt-4o', 2, 5, provider => 'openai',
                              effective_from => now() - interval '1 day');
select results_eq(
  $$ select request_id, cost_usd, price_model like 'org:%', canonical_model from public.usage_records
      where org_id = '00000000-0000-4000-8000-0000000fa001' and provider = 'openai' order by request_id $$,
  $$ values ('a-4o-1', 3.5::numeric(20, 12), false, 'gpt-4o'), ('a-4o-2', 2.5::numeric(20, 12), true, 'gpt-4o') $$,
  'an override applies from its date, to every name of the model, and keeps the canonical model');

-- new calls are priced with it as they are written (through the real ingest function)
select private.ingest_events('00000000-0000-4000-8000-0000000fa001', null, null, jsonb_build_array(jsonb_build_object(
  'idx', 0, 'request_id', 'a-dep-new', 'source', 'sdk', 'provider', 'azure', 'model', 'acme-gpt4o-eu',
  'input_tokens', 1000000, 'output_tokens', 0, 'cached_tokens', 0, 'cache_write_tokens', 0, 'reasoning_tokens', 0,
  'status', 'success', 'retry_count', 0, 'is_timeout', false, 'is_rate_limited', false, 'is_streaming', false,
  'cache_hit', false, 'metadata', '{}'::jsonb, 'occurred_at', now(), 'content_hash', md5('a-dep-new'))));
select is((select cost_usd from public.usage_records where request_id = 'a-dep-new'), 1.0::numeric(20, 12),
          'an ingested call is priced with the organization''s current price');

-- a full re-pricing (what `prices sync` runs after a catalogue change) keeps organizations' prices
select private.reprice_usage(null, false);
select is((select sum(cost_usd) from public.usage_records where org_id = '00000000-0000-4000-8000-0000000fa001'),
          (2.8 + 1.4 + 3.5 + 2.5 + 1.0)::numeric, 'a full re-pricing keeps organizations'' own prices');

-- what a model resolves to
select is(public.resolve_model_price('gpt-4o-2024-08-06', 'openai', '00000000-0000-4000-8000-0000000fa001') ->> 'source',
          'organization', 'resolve_model_price names the organization''s price');
select is(public.resolve_model_price('gpt-4o-2024-08-06', 'openai') ->> 'canonical_model', 'gpt-4o',
          'resolve_model_price without an organization: genai-prices'' model');
select is(public.resolve_model_price('never-heard-of-it', 'acme') ->> 'source', null,
          'an unknown model resolves to nothing');

-- visibility: members see their organization's prices; others do not
select tests.authenticate_as('op_other');
select is((select count(*)::int from public.model_prices where org_id is not null), 0,
          'another organization''s admin sees none of these prices');
select throws_ok($$ select public.set_model_price('00000000-0000-4000-8000-0000000fa001', 'y', 1, 1) $$,
                 '42501', null, 'nor may it set them');
select tests.clear_authentication();

select * from finish();
rollback;
