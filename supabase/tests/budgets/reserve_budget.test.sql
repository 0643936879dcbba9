-- private.reserve_budget admits a call only while spent + reserved + requested <= amount, for every
-- covering hard budget; commit_budget_reservations closes a reservation once; the sweep expires the rest.
begin;
select plan(10);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-0000000be001', 'reserve');
insert into public.budgets (id, org_id, name, amount, period, hard_limit)
values ('00000000-0000-0000-0000-0000000be0b1', '00000000-0000-0000-0000-0000000be001', 'hard', 0.12, 'daily', true);
-- gpt-4o at $2.50/$10 per million: 16,000 in + 1,000 out = $0.05
create temp table r1 as select * from private.reserve_budget('00000000-0000-0000-0000-0000000be001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');
create temp table r2 as select * from private.reserve_budget('00000000-0000-0000-0000-0000000be001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');
create temp table r3 as select * from private.reserve_budget('00000000-0000-0000-0000-0000000be001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');
-- two calls fit under $0.12, the third does not
select results_eq($$ select (select allowed from r1), (select allowed from r2), (select allowed from r3) $$,
                  $$ values (true, true, false) $$, 'admitted while it fits');
-- the refusal names the budget and the room left
select results_eq($$ select budget_id, remaining, reservation_id is null from r3 $$,
                  $$ values ('00000000-0000-0000-0000-0000000be0b1'::uuid, 0.02::numeric, true) $$,
                  'the refusal says which budget and how much room is left');
-- held: exactly the two admitted calls
select is((select sum(amount_usd) from private.budget_holds where budget_id = '00000000-0000-0000-0000-0000000be0b1'),
          0.10::numeric, 'holds are the admitted calls');
-- the reporting event commits the reservation once; a retry changes nothing
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
values ('00000000-0000-0000-0000-0000000be001', now(), 'call-1', 'openai', 'gpt-4o', 0.03, true);
select is(private.commit_budget_reservations('00000000-0000-0000-0000-0000000be001',
          jsonb_build_array(jsonb_build_object('reservation_id', (select reservation_id from r1), 'request_id', 'call-1'))),
          1, 'a report commits its reservation');
select is(private.commit_budget_reservations('00000000-0000-0000-0000-0000000be001',
          jsonb_build_array(jsonb_build_object('reservation_id', (select reservation_id from r1), 'request_id', 'call-1'))),
          0, 'the same report again commits nothing');
-- another organization cannot commit it
select is(private.commit_budget_reservations('00000000-0000-0000-0000-00000000ffff',
          jsonb_build_array(jsonb_build_object('reservation_id', (select reservation_id from r2), 'request_id', 'x'))),
          0, 'a reservation is committed only by its own organization');
-- now $0.03 spent + $0.05 held: a $0.05 call still fits under $0.12 (0.08 + 0.05 > 0.12? no: refused)
select is((select allowed from private.reserve_budget('00000000-0000-0000-0000-0000000be001', null, 'openai', 'gpt-4o',
          16000, 1000, '{}', '10 minutes')), false, 'spent + reserved + requested must stay within the amount');
-- the sweep expires reservations past their TTL and releases their holds (other tests' reservations that
-- expired while no sweep ran, e.g. a database started after a pause, are swept first so the count is ours)
select private.sweep_budget_reservations();
update private.budget_reservations set expires_at = now() - interval '1 second'
 where id = (select reservation_id from r2);
select is(private.sweep_budget_reservations(), 1, 'the sweep expires what is past its TTL');
select is_empty($$ select 1 from private.budget_holds where reservation_id = (select reservation_id from r2) $$,
                'its holds are released');
-- an eventual check sees the same room: $0.03 spent of $0.12
select results_eq($$ select allowed, remaining from private.check_budgets('00000000-0000-0000-0000-0000000be001', null,
                                                                          '{}', null) $$,
                  $$ values (true, 0.09::numeric) $$, 'check_budgets reports the room left');

select * from finish();
rollback;
