-- private.detect_prompt_compression: features whose median call sends a long uncached prompt; savings
-- are the share of the uncached input a compressor removes, at the input price. Short prompts and
-- cached ones raise nothing.
begin;
select plan(3);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000008', 'detect-compress');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000008', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'pc-' || m.feature || g, 'openai', 'gpt-4o', m.inp + g, 300, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 200) g, (values ('rag', 12000), ('chat', 2000)) m (feature, inp)
 cross join lateral private.usage_cost('openai', 'gpt-4o', now(), m.inp + g, 300, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_prompt_compression(array['d1000000-0000-0000-0000-000000000008']::uuid[],
                                                (select p_now from clock));

select results_eq($$ select scope_value from found $$, $$ values ('rag') $$, 'only the long prompts');
select is(round((select current_monthly_cost - projected_monthly_cost from found), 8),
          round((select c.cost_usd from private.usage_cost('openai', 'gpt-4o', (select p_now from clock),
                   floor((200 * 12000 + 200 * 201 / 2) * 0.3)::bigint, 0, 0, 0, 0) c) * 30 / 9.5, 8),
          '30% of the uncached input tokens at the input price, scaled to a month');
update private.detector_parameters set value = 20000 where category = 'prompt_compression' and name = 'long_prompt_tokens';
select is_empty($$ select * from private.detect_prompt_compression(
                     array['d1000000-0000-0000-0000-000000000008']::uuid[], (select p_now from clock)) $$,
                'a median under long_prompt_tokens raises nothing');

select finish();
rollback;
