-- private.budget_spend plans generically (runtime partition pruning) and still sums what a custom plan would.
begin;
select plan(2);

-- the setting is on the function, so every caller gets it
select ok((select proconfig @> array['plan_cache_mode=force_generic_plan']
             from pg_proc where oid = 'private.budget_spend(public.budgets, timestamptz, timestamptz)'::regprocedure),
          'budget_spend forces generic plans');

-- the sum over raw rows is unchanged: two priced calls in the window, one outside it
insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000006a001', 'generic');
insert into public.budgets (id, org_id, name, amount, period)
values ('00000000-0000-0000-0000-00000006a0b1', '00000000-0000-0000-0000-00000006a001', 'org', 10, 'daily');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced) values
  ('00000000-0000-0000-0000-00000006a001', now() - interval '10 minutes', 'g-1', 'openai', 'gpt-4o', 0.25, true),
  ('00000000-0000-0000-0000-00000006a001', now() - interval '20 minutes', 'g-2', 'openai', 'gpt-4o', 0.50, true),
  ('00000000-0000-0000-0000-00000006a001', now() - interval '3 days', 'g-3', 'openai', 'gpt-4o', 9.00, true);
select is((select private.budget_spend(b, now() - interval '1 hour', now() + interval '1 minute')
             from public.budgets b where b.id = '00000000-0000-0000-0000-00000006a0b1'),
          0.75::numeric, 'spend in the window is the same sum');

select * from finish();
rollback;
