-- anomaly_evidence: the window against the same hours of the previous days, the cost change split into
-- volume, mix and rate and by dimension, every set of parts summing to its total; RLS decides who reads it.
begin;
select plan(18);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000e301', 'ev-a'),
                                                   ('00000000-0000-0000-0000-00000000e302', 'ev-b');
select tests.create_user(r) from unnest(array['ev_admin', 'ev_viewer', 'ev_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000e301', tests.uid('ev_admin'), 'admin'),
  ('00000000-0000-0000-0000-00000000e301', tests.uid('ev_viewer'), 'viewer'),
  ('00000000-0000-0000-0000-00000000e302', tests.uid('ev_other'), 'admin');

-- The window: the last three whole hours. Baseline, on each of the 7 days before, in the same hours:
-- 10 calls of gpt-4o-mini at $0.01 (feature f1, team a) and 2 of gpt-4o at $0.05 (feature f2, team b).
-- Window: 20 calls of gpt-4o-mini at $0.01 and 10 of gpt-4o at $0.08 spread over features f2..f5.
create temp table w (ws timestamptz) on commit drop;
insert into w select date_trunc('hour', now()) - interval '3 hours';
create function pg_temp.use(org uuid, at timestamptz, n integer, model text, cost numeric, feature text, team text)
returns void language sql as $$
  insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                    cost_usd, priced, feature, team)
  select org, at + (i % 120) * interval '1 minute', gen_random_uuid()::text, 'openai', model, 1000, 100, cost,
         true, feature, team
  from generate_series(1, n) i
$$;
select pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws - d * interval '1 day', 10, 'gpt-4o-mini', 0.01, 'f1', 'a'),
       pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws - d * interval '1 day', 2, 'gpt-4o', 0.05, 'f2', 'b')
from w, generate_series(1, 7) d;
select pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws, 20, 'gpt-4o-mini', 0.01, 'f1', 'a'),
       pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws, 4, 'gpt-4o', 0.08, 'f2', 'b'),
       pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws, 3, 'gpt-4o', 0.08, 'f3', 'b'),
       pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws, 2, 'gpt-4o', 0.08, 'f4', 'b'),
       pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws, 1, 'gpt-4o', 0.08, 'f5', 'b'),
       -- outside every window (5 hours before the window): never counted
       pg_temp.use('00000000-0000-0000-0000-00000000e301', w.ws - interval '5 hours', 5, 'gpt-4o', 20, 'f1', 'a'),
       -- another organization, same hours
       pg_temp.use('00000000-0000-0000-0000-00000000e302', w.ws, 50, 'gpt-4o', 1, 'f1', 'a')
from w;
insert into public.anomalies (id, org_id, metric, dimension, dimension_value, severity, window_start, window_end,
                              expected_value, actual_value, money_involved, grain)
select '00000000-0000-0000-0000-00000000e3a1'::uuid, '00000000-0000-0000-0000-00000000e301'::uuid, 'cost',
       'organization', null, 'medium', w.ws, w.ws + interval '3 hours', 0.0667, 0.3333, 0.8, 'hour' from w
union all
select '00000000-0000-0000-0000-00000000e3a2', '00000000-0000-0000-0000-00000000e301', 'cost', 'feature', 'f2',
       'low', w.ws, w.ws + interval '3 hours', 0.0333, 0.1067, 0.22, 'hour' from w;

create temp table ev on commit drop as
select public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a1') as e;

-- the window and its baseline: 7 earlier windows, averaged
select is((select e #> '{usage,window}' from ev),
          '{"cost_usd": 1, "requests": 30, "cost_per_request_usd": 0.033333, "tokens_per_request": 1100,
            "error_rate": 0}'::jsonb, 'window usage');
select is((select e #> '{usage,baseline}' from ev),
          '{"cost_usd": 0.2, "requests": 12, "cost_per_request_usd": 0.016667, "tokens_per_request": 1100,
            "error_rate": 0}'::jsonb, 'baseline usage, averaged over its windows');
select is((select (e #>> '{baseline,windows}')::int from ev), 7, 'seven baseline windows');
-- the change and its percentage
select is((select e #> '{usage,change}' from ev),
          '{"cost_usd": 0.8, "cost_pct": 400, "requests": 18, "requests_pct": 150, "cost_per_request_pct": 100}'::jsonb,
          'change in cost, requests and cost per request');
-- volume (18 more calls at $0.2/12), mix (calls moving to gpt-4o) and rate (gpt-4o dearer per call)
select is((select (e -> 'cost_change_split') - array['volume_share_pct', 'mix_share_pct', 'rate_share_pct'] from ev),
          '{"total_usd": 0.8, "volume_usd": 0.3, "mix_usd": 0.2, "rate_usd": 0.3}'::jsonb, 'volume, mix and rate');
select is((select (e #>> '{cost_change_split,volume_usd}')::numeric + (e #>> '{cost_change_split,mix_usd}')::numeric
                  + (e #>> '{cost_change_split,rate_usd}')::numeric from ev),
          (select (e #>> '{cost_change_split,total_usd}')::numeric from ev), 'volume + mix + rate = total');
-- by model, feature and team the parts sum to the total change, window and baseline
select is((select array_agg(distinct s order by s) from ev,
                  lateral (select sum((p ->> 'change_usd')::numeric) as s
                           from jsonb_each(e -> 'cost_change_by') d, jsonb_array_elements(d.value) p
                           group by d.key) x),
          array[0.8]::numeric[], 'every dimension''s parts sum to the change');
select is((select array_agg(distinct s order by s) from ev,
                  lateral (select sum((p ->> 'window_cost_usd')::numeric) as s
                           from jsonb_each(e -> 'cost_change_by') d, jsonb_array_elements(d.value) p
                           group by d.key) x),
          array[1]::numeric[], 'every dimension''s window parts sum to the window cost');
-- features: the three largest changes, then the two others
select is((select jsonb_agg(p ->> 'value') from ev, jsonb_array_elements(e #> '{cost_change_by,feature}') p),
          '["f3", "f2", "f4", "(other)"]'::jsonb, 'top three features, then (other)');
select is((select e #> '{cost_change_by,feature,3}' from ev),
          '{"value": "(other)", "other_values": 2, "window_cost_usd": 0.28, "baseline_cost_usd": 0.1,
            "change_usd": 0.18, "share_of_change_pct": 22.5, "window_requests": 21, "baseline_requests": 10}'::jsonb,
          'the rest of the features as (other)');
select is((select e #> '{cost_change_by,model,0}' from ev),
          '{"value": "gpt-4o", "window_cost_usd": 0.8, "baseline_cost_usd": 0.1, "change_usd": 0.7,
            "share_of_change_pct": 87.5, "window_requests": 10, "baseline_requests": 2}'::jsonb, 'gpt-4o first');

-- API keys are named by their name and display prefix, not their id
select ok(id is not null, 'a key') from private.new_api_key('00000000-0000-0000-0000-00000000e301', null, 'batch-key');
update public.usage_records r set api_key_id = (select k.id from public.api_keys k where k.name = 'batch-key')
 where r.org_id = '00000000-0000-0000-0000-00000000e301' and r.feature = 'f3';
select is((select jsonb_agg(p - array['window_cost_usd', 'baseline_cost_usd', 'window_requests', 'baseline_requests',
                                      'share_of_change_pct'])
           from jsonb_array_elements(public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a1')
                                     #> '{cost_change_by,api_key}') p),
          (select jsonb_build_array(jsonb_build_object('value', '(none)', 'change_usd', 0.56),
                                    jsonb_build_object('value', 'batch-key', 'key_prefix', k.prefix, 'change_usd', 0.24))
           from public.api_keys k where k.name = 'batch-key'), 'keys by name and prefix');
-- a feature-scoped anomaly reads only its feature, and is not split by it
select is((select public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a2') #> '{usage,change,cost_usd}'),
          '0.22'::jsonb, 'feature scope');
select ok(not (public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a2') -> 'cost_change_by' ? 'feature'),
          'no split by the anomaly''s own dimension');

-- RLS: an admin reads it, a viewer (no anomalies.read) and another organization get null
select tests.authenticate_as('ev_admin');
select is((public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a1') #> '{usage,change,cost_usd}'), '0.8'::jsonb,
          'an admin of the organization reads the evidence');
select tests.clear_authentication();
select tests.authenticate_as('ev_viewer');
select is(public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a1'), null, 'a viewer without anomalies.read does not');
select tests.clear_authentication();
select tests.authenticate_as('ev_other');
select is(public.anomaly_evidence('00000000-0000-0000-0000-00000000e3a1'), null, 'another organization does not');
select tests.clear_authentication();

select * from finish();
rollback;
