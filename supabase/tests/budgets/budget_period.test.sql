-- private.budget_period: periods on the organization's calendar, not UTC's, reset at local midnight.
begin;
select plan(7);

-- a daily period in Kolkata (UTC+5:30) starts at local midnight, 18:30 UTC the day before
select results_eq($$ select * from private.budget_period('daily', 1::smallint, 'Asia/Kolkata', '2026-03-10 20:00Z') $$,
                  $$ values ('2026-03-10 18:30Z'::timestamptz, '2026-03-11 18:30Z'::timestamptz) $$,
                  'daily periods start at local midnight');
-- a weekly period starting on Monday (1) holds the Thursday before it
select results_eq($$ select period_start from private.budget_period('weekly', 1::smallint, 'UTC', '2026-03-12 15:00Z') $$,
                  $$ values ('2026-03-09 00:00Z'::timestamptz) $$, 'weeks start on the configured Monday');
-- ... and on Sunday (0), the Sunday before
select results_eq($$ select period_start from private.budget_period('weekly', 0::smallint, 'UTC', '2026-03-12 15:00Z') $$,
                  $$ values ('2026-03-08 00:00Z'::timestamptz) $$, 'weeks start on the configured Sunday');
-- a week starting today starts today
select results_eq($$ select period_start from private.budget_period('weekly', 4::smallint, 'UTC', '2026-03-12 15:00Z') $$,
                  $$ values ('2026-03-12 00:00Z'::timestamptz) $$, 'a week starting on the day itself');
-- March in Paris has 30 days and 23 hours: the calendar decides, not a fixed length
select results_eq($$ select period_end - period_start from private.budget_period('monthly', 1::smallint, 'Europe/Paris',
                                                                                '2026-03-15 12:00Z') $$,
                  $$ values (interval '30 days 23 hours') $$, 'months follow daylight saving');
-- an organization's time zone must be one Postgres knows
select throws_ok($$ insert into public.organizations (name, timezone) values ('tz', 'Mars/Olympus') $$,
                 '22023', null, 'unknown time zones are refused');
-- a budget's current period is computed on its organization's zone
insert into public.organizations (id, name, timezone) values ('00000000-0000-0000-0000-0000000bd001', 'tz', 'Asia/Tokyo');
insert into public.budgets (id, org_id, name, amount, period)
values ('00000000-0000-0000-0000-0000000bd0b1', '00000000-0000-0000-0000-0000000bd001', 'd', 1, 'daily');
select is((select extract(hour from p.period_start at time zone 'UTC')::integer
             from public.budgets b cross join lateral private.budget_current_period(b) p
            where b.id = '00000000-0000-0000-0000-0000000bd0b1'), 15, 'Tokyo''s midnight is 15:00 UTC');

select * from finish();
rollback;
