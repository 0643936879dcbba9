-- Gateway budget leases: a lease takes at most its share of the tightest room and never less than the call
-- at hand; the previous lease's unused part is given back in the same call; committing a call closes it
-- at its stored cost (released when no usage was stored) and takes its amount off its lease's holds, once;
-- a retired lease closes when nothing is left in it.
begin;
select plan(12);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000007e001', 'leases');
insert into public.budgets (id, org_id, name, amount, period, hard_limit)
values ('00000000-0000-0000-0000-00000007e0b1', '00000000-0000-0000-0000-00000007e001', 'hard', 1.00, 'daily', true);

-- want $5 (more than the budget), share 0.5: half the room
create temp table l1 as select * from private.gateway_lease('00000000-0000-0000-0000-00000007e001', null, 'openai',
  'gpt-4o', '{}', 0.10, 5.00, 0.5, '10 minutes');
select is((select granted from l1), 0.50::numeric, 'a lease takes at most its share of the room');
select is((select sum(amount_usd) from private.budget_holds where budget_id = '00000000-0000-0000-0000-00000007e0b1'),
          0.50::numeric, 'the lease holds its grant against the budget');

-- a second lease for a call of $0.40: half of the $0.50 left is less than the call, so the call's own cost
create temp table l2 as select * from private.gateway_lease('00000000-0000-0000-0000-00000007e001', null, 'openai',
  'gpt-4o', '{}', 0.40, 5.00, 0.5, '10 minutes');
select is((select granted from l2), 0.40::numeric, 'never less than the call at hand');

-- no room for $0.20 more: refused, naming the budget
select is((select allowed from private.gateway_lease('00000000-0000-0000-0000-00000007e001', null, 'openai',
  'gpt-4o', '{}', 0.20, 5.00, 0.5, '10 minutes')), false, 'refused when the call does not fit');

-- two calls admitted in memory against the first lease: one's usage is stored ($0.04), the other's is not
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
values ('00000000-0000-0000-0000-00000007e001', now(), 'call-1', 'openai', 'gpt-4o', 0.04, true);
select is(private.gateway_commit_calls('00000000-0000-0000-0000-00000007e001', jsonb_build_array(
  jsonb_build_object('reservation_id', '00000000-0000-0000-0000-00000007ec01', 'lease_id', (select lease_id from l1),
                     'amount_usd', 0.10, 'provider', 'openai', 'model', 'gpt-4o', 'request_id', 'call-1',
                     'stored', true, 'cost_usd', 0.04),
  jsonb_build_object('reservation_id', '00000000-0000-0000-0000-00000007ec02', 'lease_id', (select lease_id from l1),
                     'amount_usd', 0.10, 'provider', 'openai', 'model', 'gpt-4o', 'request_id', 'call-2',
                     'stored', false))),
  2, 'two calls committed');
select results_eq($$select status, actual_cost_usd from private.budget_reservations
                   where id in ('00000000-0000-0000-0000-00000007ec01', '00000000-0000-0000-0000-00000007ec02')
                   order by id$$,
                  $$values ('committed'::text, 0.04::numeric(20,12)), ('released', 0)$$,
                  'a call closes at its stored cost; one whose usage was not stored is released');
select is(private.gateway_commit_calls('00000000-0000-0000-0000-00000007e001', jsonb_build_array(
  jsonb_build_object('reservation_id', '00000000-0000-0000-0000-00000007ec01', 'lease_id', (select lease_id from l1),
                     'amount_usd', 0.10, 'provider', 'openai', 'model', 'gpt-4o', 'request_id', 'call-1',
                     'stored', true, 'cost_usd', 0.04))),
  0, 'a retried commit changes nothing');
select is((select amount_usd from private.budget_holds where reservation_id = (select lease_id from l1)),
          0.30::numeric, 'the lease holds what is not committed');
select is((select sum(amount_usd) from private.budget_holds where budget_id = '00000000-0000-0000-0000-00000007e0b1'),
          0.70::numeric, 'committed calls hold nothing: their stored usage counts instead');
select is((select count(*)::integer from private.budget_holds
            where reservation_id in ('00000000-0000-0000-0000-00000007ec01', '00000000-0000-0000-0000-00000007ec02')),
          0, 'no hold rows for committed calls');

-- a new lease giving back the first lease's unused $0.20 (of its $0.30: one more call in flight): of $1.00,
-- $0.04 spent, $0.10 still in the first lease and $0.40 in the second: $0.46 room
create temp table l3 as select * from private.gateway_lease('00000000-0000-0000-0000-00000007e001', null, 'openai',
  'gpt-4o', '{}', 0.10, 5.00, 1.0, '10 minutes', (select lease_id from l1), 0.20);
select is((select granted from l3), 0.46::numeric, 'the unused part given back counts at once');

-- the call still in flight is committed: the retired first lease is then empty and closed
select private.gateway_commit_calls('00000000-0000-0000-0000-00000007e001', jsonb_build_array(
  jsonb_build_object('reservation_id', '00000000-0000-0000-0000-00000007ec03', 'lease_id', (select lease_id from l1),
                     'amount_usd', 0.10, 'provider', 'openai', 'model', 'gpt-4o', 'request_id', 'call-3',
                     'stored', true, 'cost_usd', 0.05)));
select is((select status from private.budget_reservations where id = (select lease_id from l1)), 'released',
          'a retired lease closes once its last call is committed');

select * from finish();
rollback;
