-- partial_response_caching: a shared prefix repeated within the cache's lifetime is priced as cache reads
-- less each run's cache-write premium; sparse repeats, short prefixes and prefixes behind a long shared
-- system prompt (context_window_efficiency's) raise nothing.
begin;
select plan(5);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2401', 'pc-a');

-- Per feature: 10 sessions on 10 days, 5 calls each `gap` seconds apart, 5,000 input tokens whose first
-- `share` is one document; `system` features also share one long system prompt.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, system_prompt_hash, metadata, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2401',
       date_trunc('day', c.at, 'UTC') - d * interval '1 day' + interval '9 hours' + i * f.gap * interval '1 second',
       f.feature || '-' || d || '-' || i, 'anthropic', 'claude-sonnet-4-0', 5000, 200, f.feature, f.system,
       jsonb_build_object('tokentra', jsonb_build_object('prefix_hash', 'doc-' || f.feature, 'prefix_share', f.share)),
       (select u.cost_usd from private.usage_cost('anthropic', 'claude-sonnet-4-0', now(), 5000, 200, 0, 0, 0) u), true
from clock c, generate_series(1, 10) d, generate_series(0, 4) i,
     (values ('doc-qa', 60, 0.8, null), ('sparse', 600, 0.8, null), ('short', 60, 0.16, null),
             ('system', 60, 0.8, 'sys-1')) f(feature, gap, share, system);

create temporary table found on commit drop as
select r.* from clock c, private.detect_partial_response_caching('{00000000-0000-0000-0000-0000000d2401}', c.at) r;
create temporary table unit on commit drop as
select (select u.cost_usd from private.usage_cost('anthropic', 'claude-sonnet-4-0', now(), 1000000, 0, 0, 0, 0) u) / 1e6 as input,
       (select u.cost_usd from private.usage_cost('anthropic', 'claude-sonnet-4-0', now(), 1000000, 0, 1000000, 0, 0) u) / 1e6 as read,
       (select u.cost_usd from private.usage_cost('anthropic', 'claude-sonnet-4-0', now(), 1000000, 0, 0, 1000000, 0) u) / 1e6 as write;

-- only the document repeated a minute apart without a long shared system prompt
select results_eq($$ select scope_value from found $$, $$ values ('doc-qa') $$, 'doc-qa only');
-- 40 warm calls read 4,000 prefix tokens at the cache-read price; the 10 first calls of a session write it
select is(round(current_monthly_cost - projected_monthly_cost, 6),
          round((40 * 4000 * (u.input - u.read) - 10 * 4000 * (u.write - u.input)) * 30 / 10.5, 6),
          'reads saved less the write premium, per month')
  from found, unit u;
select is((evidence ->> 'warm_requests')::int, 40, 'warm calls in the evidence') from found;
select is((evidence ->> 'cache_write_tokens')::bigint, 40000::bigint, 'cache writes in the evidence') from found;
-- the cache lifetime is a parameter: at 30 seconds no repeat a minute apart is warm
update private.detector_parameters set value = 30 where category = 'partial_response_caching' and name = 'cache_ttl_seconds';
select is_empty($$ select * from clock c, private.detect_partial_response_caching('{00000000-0000-0000-0000-0000000d2401}', c.at) $$,
                'a 30-second cache lifetime finds no warm repeats');

select * from finish();
rollback;
