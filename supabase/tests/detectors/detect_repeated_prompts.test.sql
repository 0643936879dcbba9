-- private.detect_request_deduplication and private.detect_semantic_caching over the same repeats: the same
-- prompt again within a minute is a duplicate, later and without a cache hit a cacheable repeat; each
-- detector's savings are the cost of its own repeats, scaled to a month.
begin;
select plan(5);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000009', 'detect-repeats');
-- 200 distinct prompts; each sent once, then again 5 s later (a duplicate), prompts 1..60 again an hour later
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  prompt_hash, feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000009',
       c.p_now - (g % 10) * interval '1 day' - interval '3 hours' + k.after, 'rep-' || g || '-' || k.n, 'openai',
       'gpt-4o', 2000 + g, 300, md5(g::text), 'search', u.cost_usd, true
  from clock c, generate_series(1, 200) g
 cross join lateral (values (0, interval '0'), (1, interval '5 seconds'), (2, interval '1 hour')) k (n, after)
 cross join lateral private.usage_cost('openai', 'gpt-4o', now(), 2000 + g, 300, 0, 0, 0) u
 where k.n < 2 or g <= 60;

create temp table dups on commit drop as
select * from private.detect_request_deduplication(array['d1000000-0000-0000-0000-000000000009']::uuid[],
                                                   (select p_now from clock));
create temp table repeats on commit drop as
select * from private.detect_semantic_caching(array['d1000000-0000-0000-0000-000000000009']::uuid[],
                                              (select p_now from clock));

select is((select (evidence ->> 'requests')::int from dups), 200, 'each prompt''s second call is a duplicate');
select is(round((select current_monthly_cost - projected_monthly_cost from dups), 8),
          round((select sum(cost_usd) from public.usage_records
                  where org_id = 'd1000000-0000-0000-0000-000000000009' and request_id like '%-1') * 30 / 9.5, 8),
          'deduplication saves the duplicates'' cost, scaled to a month');
select is((select (evidence ->> 'requests')::int from repeats), 60, 'the calls an hour later are cacheable repeats');
select is(round((select current_monthly_cost - projected_monthly_cost from repeats), 8),
          round((select sum(cost_usd) from public.usage_records
                  where org_id = 'd1000000-0000-0000-0000-000000000009' and request_id like '%-2') * 30 / 9.5, 8),
          'caching saves the repeats'' cost, scaled to a month');
-- repeats answered from the cache are not counted again
update public.usage_records set cache_hit = true
 where org_id = 'd1000000-0000-0000-0000-000000000009' and request_id like '%-2';
select is_empty($$ select * from private.detect_semantic_caching(array['d1000000-0000-0000-0000-000000000009']::uuid[],
                                                                (select p_now from clock)) $$,
                'repeats served by the cache raise nothing');

select finish();
rollback;
