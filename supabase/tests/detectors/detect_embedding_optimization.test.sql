-- private.detect_embedding_optimization: an embedding model with a cheaper alternative
-- (private.model_alternatives) or registry successor moves there; savings are the tokens repriced.
begin;
select plan(4);

create temp table clock on commit drop as select date_trunc('day', now()) + interval '12 hours' as p_now;
insert into public.organizations (id, name) values ('d1000000-0000-0000-0000-000000000003', 'detect-embeddings');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  feature, cost_usd, priced)
select 'd1000000-0000-0000-0000-000000000003', c.p_now - (g % 10) * interval '1 day' - interval '1 hour',
       'emb-' || m.feature || g, 'openai', m.model, 40000, 0, m.feature, u.cost_usd, true
  from clock c, generate_series(1, 200) g,
       (values ('text-embedding-3-large', 'index'), ('text-embedding-ada-002', 'legacy-index'),
               ('text-embedding-3-small', 'small-index')) m (model, feature)
 cross join lateral private.usage_cost('openai', m.model, now(), 40000, 0, 0, 0, 0) u;

create temp table found on commit drop as
select * from private.detect_embedding_optimization(array['d1000000-0000-0000-0000-000000000003']::uuid[],
                                                    (select p_now from clock));

-- the large model by its listed alternative, ada-002 by the registry's successor; the small model is already cheapest
select results_eq($$ select scope_value, evidence ->> 'target_model' from found order by 1 $$,
                  $$ values ('index', 'text-embedding-3-small'), ('legacy-index', 'text-embedding-3-small') $$,
                  'both older or larger embedding models move to text-embedding-3-small');
select is(round((select current_monthly_cost - projected_monthly_cost from found where scope_value = 'index'), 8),
          round(((select sum(cost_usd) from public.usage_records
                   where org_id = 'd1000000-0000-0000-0000-000000000003' and feature = 'index')
                 - (select c.cost_usd from private.usage_cost('openai', 'text-embedding-3-small',
                                                              (select p_now from clock), 200 * 40000, 0, 0, 0, 0) c))
                * 30 / 9.5, 8),
          'savings are the tokens repriced at the alternative, scaled to a month');
-- an embedding scope is never a model version finding (one recommendation per pattern)
select is_empty($$ select * from private.detect_model_version_optimization(
                     array['d1000000-0000-0000-0000-000000000003']::uuid[], (select p_now from clock)) $$,
                'embedding models are left to this detector');
select is((select count(*)::int from found where effort = 'medium' and risk = 'medium'
            and jsonb_array_length(implementation_steps) = 3), 2, 'steps say to re-embed the corpus');

select finish();
rollback;
