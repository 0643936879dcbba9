-- The reliability detectors: error_reduction, timeout_cost_analysis, abandoned_request_detection and
-- retry_storm_detection fire at their rate thresholds with the wasted calls' cost scaled to a month, stay
-- silent under the rate or under a dollar a month, and read only the organizations asked for.
begin;
select plan(13);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2101', 'rel-a'),
                                                   ('00000000-0000-0000-0000-0000000d2102', 'rel-b');

-- 100 calls per feature over 10 days (the first at 13:00 ten days back: 10.5 days of history, so a month
-- is 30 / 10.5 windows), each feature with its own failure mode; one row 45 days back outside the window.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  status, is_timeout, retry_count, feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2101', c.at - interval '10 days' + interval '1 hour' + (i % 10) * interval '1 day',
       f.feature || '-' || i, 'openai', 'gpt-4o', 1000, 100,
       case when i <= f.failed and f.status <> 'retry' then f.status else 'success' end,
       f.status = 'timeout' and i <= f.failed,
       case when f.status = 'retry' and i <= f.failed then 1 else 0 end,
       f.feature, case when i <= f.failed then f.failed_cost else 0.1 end, true
from clock c, generate_series(1, 100) i,
     (values ('extract', 'error', 10, 0.5), ('healthy', 'error', 3, 0.5), ('tiny', 'error', 20, 0.001),
             ('report', 'timeout', 5, 1.0), ('chat', 'cancelled', 4, 1.0), ('agent', 'retry', 20, 0.1),
             ('calm', 'retry', 5, 0.1)) f(feature, status, failed, failed_cost);
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2101', at - interval '45 days', 'old', 'openai', 'gpt-4o', 'error', 'healthy',
       500, true from clock;
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2102', at - interval '2 days', 'b-' || i, 'openai', 'gpt-4o', 'error',
       'extract', 1, true from clock, generate_series(1, 10) i;

create temporary table found on commit drop as
select r.* from clock c, private.detect_error_reduction('{00000000-0000-0000-0000-0000000d2101}', c.at) r
union all select r.* from clock c, private.detect_timeout_cost_analysis('{00000000-0000-0000-0000-0000000d2101}', c.at) r
union all select r.* from clock c, private.detect_abandoned_request_detection('{00000000-0000-0000-0000-0000000d2101}', c.at) r
union all select r.* from clock c, private.detect_retry_storm_detection('{00000000-0000-0000-0000-0000000d2101}', c.at) r;

-- each detector fires on its feature only: 3% errors, $0.02 of errors, 5% retries per call stay silent
select results_eq($$ select category, scope_value, key from found order by category $$,
                  $$ values ('abandoned_request_detection', 'chat', 'gpt-4o'), ('error_reduction', 'extract', 'gpt-4o'),
                            ('retry_storm_detection', 'agent', 'gpt-4o'), ('timeout_cost_analysis', 'report', 'gpt-4o') $$,
                  'one finding per planted failure mode');
-- errors: the failed calls' cost per month (10 x $0.50 over 10.5 days), current the feature's whole cost
select is(round(current_monthly_cost - projected_monthly_cost, 6), round(5.0 * 30 / 10.5, 6), 'error savings')
  from found where category = 'error_reduction';
select is(round(current_monthly_cost, 6), round((5.0 + 90 * 0.1) * 30 / 10.5, 6), 'error current cost')
  from found where category = 'error_reduction';
select is((evidence ->> 'error_rate')::numeric, 0.1, 'the error rate in the evidence')
  from found where category = 'error_reduction';
-- timeouts and cancellations: their own calls' cost per month
select is(round(current_monthly_cost - projected_monthly_cost, 6), round(5.0 * 30 / 10.5, 6), 'timeout savings')
  from found where category = 'timeout_cost_analysis';
select is(round(current_monthly_cost - projected_monthly_cost, 6), round(4.0 * 30 / 10.5, 6), 'abandoned savings')
  from found where category = 'abandoned_request_detection';
-- retries: 20 retries x the mean cost of a call ($0.10), per month, on top of today's cost
select is(round(current_monthly_cost - projected_monthly_cost, 6), round(20 * 0.1 * 30 / 10.5, 6), 'retry savings')
  from found where category = 'retry_storm_detection';
select is(round(projected_monthly_cost, 6), round(10.0 * 30 / 10.5, 6), 'retry projected is today''s cost')
  from found where category = 'retry_storm_detection';
select is(suggested_rule -> 'action', '{"type": "rate_limit", "max_retries": 2}'::jsonb, 'retry rule caps retries')
  from found where category = 'retry_storm_detection';
-- the evidence carries the daily series over the ten days
select is((select count(*) from jsonb_object_keys(evidence -> 'series')), 10::bigint, 'ten days in the series')
  from found where category = 'error_reduction';

-- a threshold is a parameter: raised above the planted rate, the finding goes
update private.detector_parameters set value = 0.25 where category = 'error_reduction' and name = 'min_error_rate';
select is_empty($$ select * from clock c, private.detect_error_reduction('{00000000-0000-0000-0000-0000000d2101}', c.at) $$,
                'a 10% error rate is under a 25% threshold');
-- the other organization's errors are its own
select results_eq($$ select r.org_id, r.scope_value from clock c,
                      private.detect_abandoned_request_detection('{00000000-0000-0000-0000-0000000d2102}', c.at) r $$,
                  $$ select null::uuid, null::text where false $$, 'organization b has no cancellations');
select results_eq($$ select count(*) from clock c,
                      private.detect_timeout_cost_analysis('{00000000-0000-0000-0000-0000000d2101,00000000-0000-0000-0000-0000000d2102}', c.at) r
                      where r.org_id = '00000000-0000-0000-0000-0000000d2102' $$,
                  $$ values (0::bigint) $$, 'one statement for two organizations keeps them apart');

select * from finish();
rollback;
