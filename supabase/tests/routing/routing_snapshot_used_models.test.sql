-- private.routing_snapshot offers, beside the models of known families, the models the organization
-- called in the last 30 days (from the daily rollups) and the models its rules target; not others'.
begin;
select plan(4);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000e001', 'su1'),
                                                   ('00000000-0000-0000-0000-00000000e002', 'su2');
insert into private.usage_rollup_daily (bucket, org_id, provider, model, status, requests, canonical_model)
values (date_trunc('day', now()) - interval '3 days', '00000000-0000-0000-0000-00000000e001', 'mistral',
        'devstral-small', 'success', 12, 'devstral-small'),
       (date_trunc('day', now()) - interval '60 days', '00000000-0000-0000-0000-00000000e001', 'mistral',
        'devstral-2512', 'success', 12, 'devstral-2512');
insert into public.routing_rules (org_id, name, conditions, action) values
  ('00000000-0000-0000-0000-00000000e001', 'to a target', '{}',
   '{"type": "route_to_model", "provider": "mistral", "model": "deepseek-v4-1-flash-1017"}');

create temporary table offered on commit drop as
select o.id as org, m ->> 'model' as model
  from public.organizations o,
       jsonb_array_elements(private.routing_snapshot(o.id) -> 'models') m
 where o.id in ('00000000-0000-0000-0000-00000000e001', '00000000-0000-0000-0000-00000000e002');

select ok(exists (select 1 from offered where org = '00000000-0000-0000-0000-00000000e001' and model = 'devstral-small'),
          'a model the organization called this month is offered though it has no family');
select ok(not exists (select 1 from offered where model = 'devstral-2512'), 'one called two months ago is not');
select ok(exists (select 1 from offered where org = '00000000-0000-0000-0000-00000000e001'
                                          and model = 'deepseek-v4-1-flash-1017'), 'a rule''s target is offered');
select ok(not exists (select 1 from offered where org = '00000000-0000-0000-0000-00000000e002'
                                              and model in ('devstral-small', 'deepseek-v4-1-flash-1017')),
          'another organization''s models and targets are not');

select * from finish();
rollback;
