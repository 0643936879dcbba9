-- private.models_for (GET /models) and the served registry copy: filters, capabilities, prices, quality
-- blended with the organization's own feedback only, and a refresh that follows the families table.
begin;
select plan(7);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000d001', 'mf1');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, task_type)
select '00000000-0000-0000-0000-00000000d001', now() - interval '2 hours', 'mf-' || i, 'openai', 'gpt-4o-mini', 'summarization'
  from generate_series(1, 5) i;
insert into private.usage_request_ids (org_id, request_id, occurred_at)
select org_id, request_id, occurred_at from public.usage_records where org_id = '00000000-0000-0000-0000-00000000d001';
insert into private.usage_feedback (org_id, request_id, score)
select '00000000-0000-0000-0000-00000000d001', 'mf-' || i, 1 from generate_series(1, 5) i;

select is((select count(*) from jsonb_array_elements(private.models_for('00000000-0000-0000-0000-00000000d001')))::bigint,
          (select count(*) from public.model_registry), 'every registry row without filters');
select ok((select bool_and(m ->> 'provider' = 'openai' and m ->> 'family' is not null)
             from jsonb_array_elements(private.models_for('00000000-0000-0000-0000-00000000d001', 'openai', true)) m),
          'provider and family filters');
select is((select m -> 'capabilities' ->> 'tools' from jsonb_array_elements(
             private.models_for('00000000-0000-0000-0000-00000000d001', 'openai', true)) m where m ->> 'model' = 'gpt-4o-mini'),
          'true', 'capabilities are listed');
-- 5 perfect scores on content: (0.75 * 20 + 5) / 25 = 0.8
select results_eq($$ select (m -> 'quality' ->> 'content')::numeric, (m -> 'quality_samples' ->> 'content')::int
                       from jsonb_array_elements(private.models_for('00000000-0000-0000-0000-00000000d001', 'openai', true)) m
                      where m ->> 'model' = 'gpt-4o-mini' $$,
                  $$ values (0.8000, 5) $$, 'quality blends the organization''s feedback, with its sample size');
select is((select (m -> 'quality' ->> 'content')::numeric from jsonb_array_elements(
             private.models_for(gen_random_uuid(), 'openai', true)) m where m ->> 'model' = 'gpt-4o-mini'),
          0.750, 'another organization sees the prior');
select ok(not exists (select 1 from jsonb_array_elements(private.models_for('00000000-0000-0000-0000-00000000d001', null, false, false)) m
                       where (m ->> 'deprecated')::boolean), 'deprecated models can be left out');
-- a change of families reaches the served copy on refresh
update private.model_families set max_output_tokens = 12345 where family = 'gpt-4o-mini';
select private.refresh_model_registry();
select is((select max_output_tokens from private.model_registry_cache where provider = 'openai' and model = 'gpt-4o-mini'),
          12345, 'the served copy follows the families after a refresh');

select * from finish();
rollback;
