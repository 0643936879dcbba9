-- output_format_optimization: a feature whose measured answers carry a large share of output outside the
-- JSON is priced at those tokens' output price; compact answers, or too few measured, raise nothing.
begin;
select plan(4);

create temporary table clock on commit drop as
select date_trunc('day', now(), 'UTC') + interval '12 hours' as at;
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000d2501', 'of-a');

-- 100 answers of 3,000 output tokens per feature over 10 days: extract 30% overhead (json_object),
-- compact 5%, few 30% but only 40 measured.
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, metadata, cost_usd, priced)
select '00000000-0000-0000-0000-0000000d2501', date_trunc('day', c.at, 'UTC') - (i % 10 + 1) * interval '1 day',
       f.feature || '-' || i, 'openai', 'gpt-4o', 500, 3000, f.feature,
       case when i <= f.measured then jsonb_build_object('tokentra', jsonb_build_object(
         'response_format', 'json_object', 'output_overhead', f.overhead)) else '{}' end,
       (select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 500, 3000, 0, 0, 0) u), true
from clock c, generate_series(1, 100) i,
     (values ('extract', 0.3, 100), ('compact', 0.05, 100), ('few', 0.3, 40)) f(feature, overhead, measured);

create temporary table found on commit drop as
select r.* from clock c, private.detect_output_format_optimization('{00000000-0000-0000-0000-0000000d2501}', c.at) r;

select results_eq($$ select scope_value from found $$, $$ values ('extract') $$, 'extract only');
-- 90,000 avoidable output tokens at gpt-4o's output price, per month (the first day ten days back: 10.5 days)
select is(round(current_monthly_cost - projected_monthly_cost, 6),
          round((select u.cost_usd from private.usage_cost('openai', 'gpt-4o', now(), 0, 90000, 0, 0, 0) u) * 30 / 10.5, 6),
          'avoidable output tokens at the output price, per month')
  from found;
select is(evidence -> 'requested_formats', '{"json_object": 100}'::jsonb, 'the formats asked for') from found;
select is(implementation_steps ->> 0, 'Move from json_object to json_schema with strict=true, so the model emits only '
                                      'the fields of the schema, compactly.', 'the step for json_object') from found;

select * from finish();
rollback;
