-- private.detect_context_window_efficiency: calls sharing a long system prompt that the prompt cache does
-- not serve; savings: every call but the first of each prompt reads the shortest call's length from the
-- cache. Short prompts and prompts already cached raise nothing.
begin;
select plan(4);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000006', 'detect-context');
-- support: three long system prompts; short: a 500-token one
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  system_prompt_hash, feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000006', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'cw-' || m.feature || g, 'openai', 'gpt-4o', m.prefix + (g * 7) % 500, 200, m.feature || (g % 3),
       m.feature, u.cost_usd, true
  from clock c, generate_series(1, 300) g, (values ('support', 3000), ('short', 500)) m (feature, prefix)
 cross join lateral private.usage_cost('openai', 'gpt-4o', now(), m.prefix + (g * 7) % 500, 200, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_context_window_efficiency(array['d1000000-0000-0000-0000-000000000006']::uuid[],
                                                       (select p_now from clock));

select results_eq($$ select scope_value, (evidence ->> 'system_prompts')::int from found $$,
                  $$ values ('support', 3) $$, 'the feature with three long system prompts; 500 tokens is too short');
-- cacheable tokens: per prompt, (calls - 1) times its shortest call
select is((select (evidence ->> 'cacheable_tokens')::bigint from found),
          (select sum((n - 1) * shortest)::bigint from (
             select count(*) as n, min(input_tokens) as shortest from public.usage_records
              where org_id = 'd1000000-0000-0000-0000-000000000006' and feature = 'support'
              group by system_prompt_hash) x),
          'cacheable tokens are the shortest call of each prompt for every call but the first');
select is(round((select current_monthly_cost - projected_monthly_cost from found), 8),
          round(((select c.cost_usd from private.usage_cost('openai', 'gpt-4o', (select p_now from clock),
                    x.input, 300 * 200, 0, 0, 0) c)
                 - (select c.cost_usd from private.usage_cost('openai', 'gpt-4o', (select p_now from clock),
                    x.input, 300 * 200, (select (evidence ->> 'cacheable_tokens')::bigint from found), 0, 0) c))
                * 30 / 9.5, 8),
          'savings are the cacheable tokens at the cache-read price instead of the input price')
  from (select sum(input_tokens)::bigint as input from public.usage_records
         where org_id = 'd1000000-0000-0000-0000-000000000006' and feature = 'support') x;
-- prompts already served from the cache are not counted
update public.usage_records set cached_tokens = input_tokens / 2
 where org_id = 'd1000000-0000-0000-0000-000000000006' and feature = 'support';
select is_empty($$ select * from private.detect_context_window_efficiency(
                     array['d1000000-0000-0000-0000-000000000006']::uuid[], (select p_now from clock)) $$,
                'prompts with over max_cached_share of input cached raise nothing');

select finish();
rollback;
