-- Two causes on one model's day, each named with its own amount: timing beside batch calls tracked without
-- their tier, timing across the midnight a price changes at, and untracked traffic beside untiered batch
-- calls.
begin;
select plan(9);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000cd001', 'recon');
insert into public.provider_connections (id, org_id, provider, ciphertext, wrapped_key) values
  ('00000000-0000-0000-0000-0000000cd0a1', '00000000-0000-0000-0000-0000000cd001', 'openai', '\x01', '\x02'),
  ('00000000-0000-0000-0000-0000000cd0a2', '00000000-0000-0000-0000-0000000cd001', 'anthropic', '\x01', '\x02');
insert into private.provider_admin_keys (connection_id, org_id, key_hint, ciphertext, wrapped_key)
select id, org_id, 'abcd', '\x01', '\x02' from public.provider_connections
 where org_id = '00000000-0000-0000-0000-0000000cd001';

-- n tracked calls of one shape, priced as ingest prices them
create function pg_temp.track(provider text, day date, model text, n integer, inp bigint, cached bigint, outp bigint,
                              tier text default null, at time default '12:00') returns void
language sql as $$
  insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, cached_tokens,
                                    output_tokens, service_tier, cost_usd, price_id, price_model, priced)
  select '00000000-0000-0000-0000-0000000cd001', (day + at) at time zone 'UTC', gen_random_uuid()::text, provider,
         model, inp, cached, outp, tier, c.cost_usd, c.price_id, c.price_model, c.cost_usd is not null
    from generate_series(1, n) i
    left join lateral private.org_usage_cost('00000000-0000-0000-0000-0000000cd001', provider, model,
                                             (day + at) at time zone 'UTC', inp, outp, cached, 0, 0, tier) c on true
$$;
-- an OpenAI report row and its cost lines at the given prices (USD per million tokens)
create function pg_temp.bill(day date, model text, key text, inp bigint, cached bigint, outp bigint, pin numeric,
                             pcached numeric, pout numeric, batch boolean default false, cents boolean default false)
returns void language sql as $$
  insert into private.provider_billed_usage (org_id, connection_id, provider, endpoint, bucket_start, bucket_end,
         bucket_width, model, canonical_model, api_key_id, project_id, batch, service_tier, input_tokens,
         cached_input_tokens, output_tokens, requests, sync_id)
  values ('00000000-0000-0000-0000-0000000cd001', '00000000-0000-0000-0000-0000000cd0a1', 'openai',
          'organization/usage/completions', day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC',
          '1d', model, private.canonical_model('openai', model), key, 'proj_main', batch, 'default', inp, cached,
          outp, 1, gen_random_uuid());
  insert into private.provider_billed_cost (org_id, connection_id, provider, endpoint, bucket_start, bucket_end,
         bucket_width, line_item, project_id, model, canonical_model, cost_type, token_type, amount, sync_id)
  select '00000000-0000-0000-0000-0000000cd001', '00000000-0000-0000-0000-0000000cd0a1', 'openai', 'organization/costs',
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
   where c.org_id = '00000000-0000-0000-0000-0000000cd001' and c.day = cause.day
     and c.canonical_model is not distinct from cause.model and c.cause = cause.cause
$$;

-- timing beside a batch discount (days 3, 4): four batch calls tracked without their tier, and two calls
-- started before midnight that the provider bills the next day
select pg_temp.track('openai', '2026-11-03', 'gpt-4o-mini', 14, 100000, 0, 10000);
select pg_temp.track('openai', '2026-11-03', 'gpt-4o-mini', 2, 100000, 0, 10000, at => '23:59:30');
select pg_temp.bill('2026-11-03', 'gpt-4o-mini', 'key_app', 1000000, 0, 100000, 0.15, 0.075, 0.6);
select pg_temp.bill('2026-11-03', 'gpt-4o-mini', 'key_app', 400000, 0, 40000, 0.075, 0.0375, 0.3, batch => true);
select pg_temp.track('openai', '2026-11-04', 'gpt-4o-mini', 10, 100000, 0, 10000);
select pg_temp.bill('2026-11-04', 'gpt-4o-mini', 'key_app', 1200000, 0, 120000, 0.15, 0.075, 0.6);
-- timing across a price step (days 10, 11): the provider bills 20% more from day 11, two calls of day 10
-- among them
select pg_temp.track('openai', '2026-11-10', 'gpt-4.1', 5, 10000, 0, 1000);
select pg_temp.track('openai', '2026-11-10', 'gpt-4.1', 2, 10000, 0, 1000, at => '23:59:30');
select pg_temp.bill('2026-11-10', 'gpt-4.1', 'key_app', 50000, 0, 5000, 2, 0.5, 8);
select pg_temp.track('openai', '2026-11-11', 'gpt-4.1', 5, 10000, 0, 1000);
select pg_temp.bill('2026-11-11', 'gpt-4.1', 'key_app', 70000, 0, 7000, 2.4, 0.6, 9.6);
-- untracked traffic beside a batch discount (day 20): a shadow key, and four batch calls tracked without
-- their tier, so the standard tokens billed exceed ours by less than the shadow key's
select pg_temp.track('openai', '2026-11-20', 'gpt-4o-mini', 14, 100000, 0, 10000);
select pg_temp.bill('2026-11-20', 'gpt-4o-mini', 'key_app', 1000000, 0, 100000, 0.15, 0.075, 0.6);
select pg_temp.bill('2026-11-20', 'gpt-4o-mini', 'key_app', 400000, 0, 40000, 0.075, 0.0375, 0.3, batch => true);
select pg_temp.bill('2026-11-20', 'gpt-4o-mini', 'key_shadow', 300000, 0, 30000, 0.15, 0.075, 0.6);

select private.reconcile('00000000-0000-0000-0000-0000000cd001', '2026-11-01', '2026-11-30');

-- the untiered batch calls are the discount, the midnight calls are timing, at the standard price
select is(pg_temp.cause('2026-11-03', 'gpt-4o-mini', 'batch_flex_discount'), -0.042, 'batch beside timing: half of 0.084');
select is(pg_temp.cause('2026-11-03', 'gpt-4o-mini', 'timing'), -0.042, 'timing beside batch: the day the calls started');
select is(pg_temp.cause('2026-11-04', 'gpt-4o-mini', 'timing'), 0.042, 'timing beside batch: the day they were billed');
-- each side of the midnight calls at its own day's price; the new price of the next day's own calls
select is(pg_temp.cause('2026-11-10', 'gpt-4.1', 'timing'), -0.056, 'timing at a price step: the old price');
select is(pg_temp.cause('2026-11-11', 'gpt-4.1', 'timing'), 0.0672, 'timing at a price step: the new price');
select is(pg_temp.cause('2026-11-11', 'gpt-4.1', 'price_change'), 0.028, 'price change: 20% of our 0.14');
-- the shadow key's tokens are untracked traffic, the rest of the standard tokens a batch discount
select is(pg_temp.cause('2026-11-20', 'gpt-4o-mini', 'untracked_traffic'), 0.063, 'untracked beside batch: the shadow key');
select is(pg_temp.cause('2026-11-20', 'gpt-4o-mini', 'batch_flex_discount'), -0.042, 'batch beside untracked traffic');
-- nothing is left unexplained
select is((select coalesce(sum(abs(amount_usd)), 0) from private.reconciliation_causes
            where org_id = '00000000-0000-0000-0000-0000000cd001' and cause = 'unexplained'), 0::numeric,
          'no planted gap is left unexplained');

select * from finish();
rollback;
