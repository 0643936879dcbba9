-- private.refresh_provider_health and provider_degraded alerts: shares and percentiles from the rollups
-- per provider and model and for the whole provider; rows from too few organizations hidden from others;
-- a degraded provider raises one event per episode and resolves it when health returns.
begin;
select plan(9);

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-00000000a001', 'ph1'), ('00000000-0000-0000-0000-00000000a002', 'ph2');
-- 40 calls of a made-up provider now: 10 errors, 6 rate limited (statuses), latencies 100..4000 ms
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, is_rate_limited, latency_ms)
select '00000000-0000-0000-0000-00000000a001', now() - interval '1 minute', 'ph-' || i, 'phprov',
       case when i % 2 = 0 then 'ph-a' else 'ph-b' end,
       case when i <= 10 then 'error' when i <= 16 then 'rate_limited' else 'success' end, i > 10 and i <= 16,
       i * 100
  from generate_series(1, 40) i;
select ok(private.refresh_provider_health() > 0, 'health rows written');

-- the whole provider: 16 of 40 calls failed (rate limits count as failures), 6 were rate limited
select results_eq($$ select requests, error_share, rate_limited_share from private.provider_health
                      where provider = 'phprov' and model = '*' and window_name = '1h' $$,
                  $$ values (40::bigint, 0.40000::numeric, 0.15000::numeric) $$, 'provider-wide shares');
select is((select requests from private.provider_health where provider = 'phprov' and model = 'ph-a' and window_name = '24h'),
          20::bigint, 'per-model rows, per window');
-- p95 of 100..4000 ms is about 3800 ms, within half a histogram slot
select ok((select p95_ms between 3400 and 4200 from private.provider_health
            where provider = 'phprov' and model = '*' and window_name = '1h'), 'p95 from the latency histograms');

-- with a minimum of two organizations, another organization's member does not see this one's health
update private.provider_health_settings set min_organizations = 2;
select tests.create_user('ph_outsider');
select tests.authenticate_as('ph_outsider');
select is_empty($$ select 1 from public.provider_health where provider = 'phprov' $$,
                'health drawn from one organization is hidden from others');
select tests.clear_authentication();

-- a degraded-provider rule of the organization whose calls these are fires once per episode
insert into public.alert_rules (org_id, name, type, condition) values
  ('00000000-0000-0000-0000-00000000a001', 'phprov down', 'provider_degraded',
   '{"provider": "phprov", "max_error_pct": 20}'),
  ('00000000-0000-0000-0000-00000000a002', 'not mine', 'provider_degraded', '{"provider": "phprov", "max_error_pct": 20}');
select is((private.evaluate_provider_alerts() ->> 'raised')::integer, 1,
          'one event, for the organization that may see the health row');
select is((private.evaluate_provider_alerts() ->> 'raised')::integer, 0, 'no second event while one is open');
-- health returns: the event resolves
update public.usage_records set status = 'success', is_rate_limited = false
 where org_id = '00000000-0000-0000-0000-00000000a001' and provider = 'phprov';
select private.refresh_provider_health();
select is((private.evaluate_provider_alerts() ->> 'resolved')::integer, 1, 'the event resolves when health returns');
-- unknown rule types are still refused
select throws_ok($$ insert into public.alert_rules (org_id, name, type) values
                    ('00000000-0000-0000-0000-00000000a001', 'x', 'no_such_type') $$, '23514', null,
                 'the type list still refuses unknown types');

select * from finish();
rollback;
