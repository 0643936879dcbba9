-- Quality blended with an organization's feedback, the routing snapshot (enabled rules by priority,
-- registry rows with quality), the decision columns derived from metadata.tokentra, and realised savings
-- per rule and arm measured from usage rows against the asked model's price.
begin;
select plan(11);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000b001', 'rt1'),
                                                   ('00000000-0000-0000-0000-00000000b002', 'rt2');
insert into public.routing_rules (id, org_id, name, priority, conditions, action, traffic_share, enabled) values
  ('00000000-0000-0000-0000-00000000c001', '00000000-0000-0000-0000-00000000b001', 'second', 20,
   '{"feature": "faq"}', '{"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"}', 0.5, true),
  ('00000000-0000-0000-0000-00000000c002', '00000000-0000-0000-0000-00000000b001', 'first', 10,
   '{}', '{"type": "block"}', 1, true),
  ('00000000-0000-0000-0000-00000000c003', '00000000-0000-0000-0000-00000000b001', 'off', 5,
   '{}', '{"type": "block"}', 1, false),
  ('00000000-0000-0000-0000-00000000c004', '00000000-0000-0000-0000-00000000b002', 'other org', 1,
   '{}', '{"type": "block"}', 1, true);

-- 30 routed calls (gpt-4o asked, gpt-4o-mini used), 10 control calls on gpt-4o, with feedback
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, task_type, input_tokens,
                                  output_tokens, cost_usd, priced, routed_from_model, metadata)
select '00000000-0000-0000-0000-00000000b001', now() - interval '1 hour', 'rt-' || i, 'openai',
       case when i <= 30 then 'gpt-4o-mini' else 'gpt-4o' end, 'faq', 1000, 500,
       case when i <= 30 then 0.00045 else 0.0075 end, true, case when i <= 30 then 'gpt-4o' end,
       jsonb_build_object('tokentra', jsonb_build_object('routing_rule_id', '00000000-0000-0000-0000-00000000c001',
                                                         'routing_arm', case when i <= 30 then 'treatment' else 'control' end,
                                                         'routed_from_provider', 'openai'))
  from generate_series(1, 40) i;
insert into private.usage_request_ids (org_id, request_id, occurred_at)
select org_id, request_id, occurred_at from public.usage_records where org_id = '00000000-0000-0000-0000-00000000b001';
insert into private.usage_feedback (org_id, request_id, score)
select '00000000-0000-0000-0000-00000000b001', 'rt-' || i, 0.5 from generate_series(1, 30) i;

-- the decision columns come from metadata.tokentra
select is((select count(*) from public.usage_records where routing_rule_id = '00000000-0000-0000-0000-00000000c001'
                                                      and routing_arm = 'treatment'), 30::bigint,
          'rule id and arm are read from the event''s signals');

-- 30 scores of 0.5 pull gpt-4o-mini's chat prior (0.78) to (0.78*20 + 15) / 50 = 0.612
select results_eq($$ select feedback_count, feedback_mean, score from private.model_quality('00000000-0000-0000-0000-00000000b001')
                      where model = 'gpt-4o-mini' and category = 'chat' $$,
                  $$ values (30::bigint, 0.5000::numeric, 0.6120::numeric) $$, 'feedback updates the prior by its weight');
select is((select count(*) from private.model_quality('00000000-0000-0000-0000-00000000b002')), 0::bigint,
          'another organization''s feedback is not this one''s quality');

-- the snapshot: enabled rules of this organization by priority
select is((select jsonb_agg(r ->> 'name') from jsonb_array_elements(private.routing_snapshot('00000000-0000-0000-0000-00000000b001') -> 'rules') r),
          '["first", "second"]'::jsonb, 'enabled rules of the organization, by priority');
select ok((select bool_and(m ? 'input_mtok' and m ? 'quality')
             from jsonb_array_elements(private.routing_snapshot('00000000-0000-0000-0000-00000000b001') -> 'models') m),
          'every model in the snapshot has a price and quality');
select is((select (m -> 'quality' ->> 'chat')::numeric
             from jsonb_array_elements(private.routing_snapshot('00000000-0000-0000-0000-00000000b001') -> 'models') m
            where m ->> 'model' = 'gpt-4o-mini' and m ->> 'provider' = 'openai'), 0.6120,
          'the snapshot carries the blended quality');
select is((select (m -> 'quality' ->> 'chat')::numeric
             from jsonb_array_elements(private.routing_snapshot('00000000-0000-0000-0000-00000000b002') -> 'models') m
            where m ->> 'model' = 'gpt-4o-mini' and m ->> 'provider' = 'openai'), 0.780,
          'an organization without feedback gets the prior');
select ok(not exists (select 1 from jsonb_array_elements(private.routing_snapshot('00000000-0000-0000-0000-00000000b001') -> 'models') m
                       where m ->> 'kind' = 'special'), 'no speech, image or realtime model is a routing candidate');

-- savings: the treatment's counterfactual is gpt-4o's price for the same tokens, priced in SQL
select is((select requests from private.routing_savings('00000000-0000-0000-0000-00000000b001') where routing_arm = 'treatment'),
          30::bigint, 'treatment calls counted');
select is((select counterfactual_cost_usd from private.routing_savings('00000000-0000-0000-0000-00000000b001') where routing_arm = 'treatment'),
          (select round(30 * cost_usd, 8) from private.usage_cost('openai', 'gpt-4o', now(), 1000, 500, 0, 0, 0)),
          'counterfactual = the asked model''s price for the same tokens');
select is((select savings_usd from private.routing_savings('00000000-0000-0000-0000-00000000b001') where routing_arm = 'control'),
          0::numeric, 'the control arm saves nothing');

select * from finish();
rollback;
