-- private.detect_io_ratio_optimization: long answers to short prompts with a heavy tail; savings are the
-- output tokens beyond the median answer at the output price. Balanced answers raise nothing.
begin;
select plan(4);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000007', 'detect-io');
-- writer: 300 tokens in, answers of 500 tokens but every fifth 8,000; chat: 2,000 in, 300 out
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000007', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'io-' || m.feature || g, 'openai', 'gpt-4o', m.inp, m.outp, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 300) g
 cross join lateral (values ('writer', 300, case when g % 5 = 0 then 8000 else 500 end),
                            ('chat', 2000, 300)) m (feature, inp, outp)
 cross join lateral private.usage_cost('openai', 'gpt-4o', now(), m.inp, m.outp, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_io_ratio_optimization(array['d1000000-0000-0000-0000-000000000007']::uuid[],
                                                   (select p_now from clock));

select results_eq($$ select scope_value, (evidence ->> 'median_output_tokens')::int,
                            (evidence ->> 'excess_output_tokens')::bigint from found $$,
                  $$ values ('writer', 500, 60 * 7500::bigint) $$,
                  'the writer feature: median 500 tokens, 60 answers 7,500 tokens over it');
select is(round((select current_monthly_cost - projected_monthly_cost from found), 8),
          round((select c.cost_usd from private.usage_cost('openai', 'gpt-4o', (select p_now from clock), 0,
                                                           60 * 7500, 0, 0, 0) c) * 30 / 9.5, 8),
          'savings are the excess output tokens at the output price, scaled to a month');
select is((select (suggested_rule -> 'action' ->> 'max_tokens')::int from found), 600,
          'the suggested cap is 1.2 times the median answer');
update private.detector_parameters set value = 50 where category = 'io_ratio_optimization' and name = 'min_io_ratio';
select is_empty($$ select * from private.detect_io_ratio_optimization(
                     array['d1000000-0000-0000-0000-000000000007']::uuid[], (select p_now from clock)) $$,
                'a ratio under min_io_ratio raises nothing');

select finish();
rollback;
