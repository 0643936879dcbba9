-- time_based_optimization beyond two fixed hours: a four-hour nightly window, two runs a day and work
-- nobody waits on (not streamed, slow, never cancelled) are batchable; a workday, a streamed window, a
-- one-off backfill and slow calls users give up on are not.
begin;
select plan(4);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2801', 'tw-a');

-- 40 calls a day for 12 days per feature, at the hours its shape gives (`hours` starting at `start`;
-- `twice` adds a second run 12 hours later), with its streaming, latency and cancellations.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  status, is_streaming, latency_ms, feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2801',
       date_trunc('day', c.at, 'UTC') - d * interval '1 day' + f.start * interval '1 hour'
         + case when f.twice and i % 2 = 1 then interval '12 hours' else interval '0 hours' end
         + (i * f.hours * 3600 / 40) * interval '1 second',
       f.feature || '-' || d || '-' || i, 'openai', 'gpt-4o', 5000, 800,
       case when i < f.cancelled then 'cancelled' else 'success' end, f.streamed, f.latency, f.feature,
       (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 5000, 800, 0, 0, 0) u), true
from clock c, generate_series(1, 12) d, generate_series(0, 39) i,
     (values ('nightly-4h', 22, 4, false, false, 2000, 0), ('twice-a-day', 1, 2, true, false, 2000, 0),
             ('unhurried', 0, 24, false, false, 40000, 0), ('workday', 8, 9, false, false, 2000, 0),
             ('streamed-window', 19, 4, false, true, 2000, 0), ('users-give-up', 0, 24, false, false, 40000, 1))
       f(feature, start, hours, twice, streamed, latency, cancelled);
-- a one-off backfill: 400 calls in two hours on one day, and a trickle of 5 calls a day at that hour
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  latency_ms, feature, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2801',
       date_trunc('day', c.at, 'UTC') - case when i <= 400 then 3 else i % 12 + 1 end * interval '1 day'
         + interval '3 hours' + (i % 400) * interval '15 seconds',
       'backfill-' || i, 'openai', 'gpt-4o', 5000, 800, 2000, 'backfill',
       (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 5000, 800, 0, 0, 0) u), true
from clock c, generate_series(1, 460) i;

create temporary table found on commit drop as
select r.* from clock c, private.detect_time_based_optimization('{00000000-0000-0000-0000-0000000d2801}', c.at) r;

select results_eq($$ select scope_value, (evidence ->> 'scheduled')::boolean from found order by 1 $$,
                  $$ values ('nightly-4h', true), ('twice-a-day', true), ('unhurried', false) $$,
                  'the four-hour window, the two runs and the unhurried work only');
select is(evidence -> 'busiest_hours_utc', '[0, 1, 22, 23]'::jsonb, 'the window wraps midnight')
  from found where scope_value = 'nightly-4h';
select is(evidence -> 'busiest_hours_utc', '[1, 2, 13, 14]'::jsonb, 'both runs are the busiest hours')
  from found where scope_value = 'twice-a-day';
-- the savings of every finding: its tokens at the batch price instead of the standard one
select is(count(*), 3::bigint, 'each finding is the batch tier''s discount on its own tokens')
  from found f, clock c, private.detector_window('{00000000-0000-0000-0000-0000000d2801}', c.at) w
 where round(f.current_monthly_cost - f.projected_monthly_cost, 6)
       = round((480 * (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 5000, 800, 0, 0, 0) u)
                - (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 480 * 5000, 480 * 800, 0, 0, 0,
                                                             'batch') u)) * w.monthly, 6);

select * from finish();
rollback;
