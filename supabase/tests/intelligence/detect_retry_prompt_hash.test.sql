-- retry_storm_detection finds retries without a retry counter: calls repeating the prompt of a call that
-- failed moments before; repeats after a success, or long after a failure, are not retries.
begin;
select plan(5);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2701', 'rh-a');

-- Per feature, 100 prompts over 10 days, each sent once; on 30 of them (storm) a 429 is followed by two
-- retries 1 and 3 s later (the last succeeds); dupes repeats 30 successful prompts 5 s later; late retries
-- 30 failed prompts an hour later. Every call costs $0.10; no call reports a retry count.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, status, prompt_hash, feature,
                                  cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2701',
       date_trunc('day', c.at, 'UTC') - (i % 10 + 1) * interval '1 day' + i * interval '1 minute' + a.delay,
       f.feature || '-' || i || '-' || a.n, 'openai', 'gpt-4o',
       case when a.n = 0 and f.feature <> 'dupes' and i <= 30 then 'rate_limited'
            when a.n = 1 and f.feature = 'storm' then 'rate_limited' else 'success' end,
       f.feature || '-prompt-' || i, f.feature, 0.1, true
from clock c, generate_series(1, 100) i, (values ('storm'), ('dupes'), ('late')) f(feature),
     lateral (values (0, interval '0 seconds'), (1, case f.feature when 'storm' then interval '1 second'
                                                                 when 'dupes' then interval '5 seconds'
                                                                 else interval '1 hour' end),
                     (2, interval '3 seconds')) a(n, delay)
where a.n = 0 or (i <= 30 and (a.n = 1 or f.feature = 'storm'));

create temporary table found on commit drop as
select r.* from clock c, private.detect_retry_storm_detection('{00000000-0000-0000-0000-0000000d2701}', c.at) r;

select results_eq($$ select scope_value from found $$, $$ values ('storm') $$, 'the storm only');
-- 60 retries (two per failed prompt) over 160 calls
select is((evidence ->> 'prompt_hash_retries')::int, 60, 'retries found by prompt hash') from found;
select is((evidence ->> 'retry_rate')::numeric, round(60 / 160.0, 4), 'retries per call') from found;
-- savings: the retries' own cost ($0.10 each), per month (10.5 days); today's cost already holds them
select is(round(current_monthly_cost - projected_monthly_cost, 6), round(60 * 0.1 * 30 / 10.5, 6), 'retry savings')
  from found;
select is(round(current_monthly_cost, 6), round(160 * 0.1 * 30 / 10.5, 6), 'today''s cost as billed') from found;

select * from finish();
rollback;
