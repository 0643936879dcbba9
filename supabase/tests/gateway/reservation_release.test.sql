-- private.release_budget_reservation gives an open reservation back at once, only to its organization,
-- only once; a committed reservation is not released.
begin;
select plan(5);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000006d001', 'release');
insert into public.budgets (id, org_id, name, amount, period, hard_limit)
values ('00000000-0000-0000-0000-00000006d0b1', '00000000-0000-0000-0000-00000006d001', 'hard', 0.12, 'daily', true);
create temp table r1 as select * from private.reserve_budget('00000000-0000-0000-0000-00000006d001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');

-- another organization cannot release it
select is(private.release_budget_reservation('00000000-0000-0000-0000-00000000ffff', (select reservation_id from r1)),
          false, 'another organization cannot release a reservation');
-- its own organization releases it once, and the hold is gone
select is(private.release_budget_reservation('00000000-0000-0000-0000-00000006d001', (select reservation_id from r1)),
          true, 'the organization releases its reservation');
select is_empty($$ select 1 from private.budget_holds where reservation_id = (select reservation_id from r1) $$,
                'its hold is gone at once');
select is(private.release_budget_reservation('00000000-0000-0000-0000-00000006d001', (select reservation_id from r1)),
          false, 'a second release changes nothing');
-- the room is back: two $0.05 calls fit again under $0.12, the third does not (one statement each)
create temp table again (allowed boolean);
insert into again select allowed from private.reserve_budget('00000000-0000-0000-0000-00000006d001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');
insert into again select allowed from private.reserve_budget('00000000-0000-0000-0000-00000006d001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');
insert into again select allowed from private.reserve_budget('00000000-0000-0000-0000-00000006d001', null, 'openai',
  'gpt-4o', 16000, 1000, '{}', '10 minutes');
select is((select count(*)::int from again where allowed), 2, 'the released room admits calls again');

select * from finish();
rollback;
