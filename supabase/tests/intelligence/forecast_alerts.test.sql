-- Forecast overrun: one event per (rule, budget, period) while the forecast is over, resolved after;
-- forecasts are read by those who read budgets, written only by the service.
begin;
select plan(5);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000a801', 'a');
select tests.create_user('fo_member');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000a801', tests.uid('fo_member'), 'member');
insert into public.budgets (id, org_id, name, amount, period) values
  ('00000000-0000-0000-0000-00000000a8b1', '00000000-0000-0000-0000-00000000a801', 'monthly', 100, 'monthly');
insert into public.alert_rules (org_id, name, type) values
  ('00000000-0000-0000-0000-00000000a801', 'overrun', 'forecast_overrun');
insert into public.spend_forecasts (org_id, budget_id, period_start, period_end, spent_to_date, forecast, lower_80,
                                    upper_80, lower_95, upper_95, budget_amount, overrun_probability, method) values
  ('00000000-0000-0000-0000-00000000a801', '00000000-0000-0000-0000-00000000a8b1', date_trunc('month', now()),
   date_trunc('month', now()) + interval '1 month', 60, 130, 115, 145, 105, 160, 100, 0.97, 'test');

-- a forecast over the budget raises one event, and a rerun nothing more
select is((private.sync_forecast_alerts('00000000-0000-0000-0000-00000000a801') ->> 'raised')::int, 1, 'raised');
select is((private.sync_forecast_alerts('00000000-0000-0000-0000-00000000a801') ->> 'raised')::int, 0, 'once');
-- back under the budget: resolved
update public.spend_forecasts set forecast = 90, lower_80 = 80, lower_95 = 70, overrun_probability = 0.1
 where org_id = '00000000-0000-0000-0000-00000000a801';
select is((private.sync_forecast_alerts('00000000-0000-0000-0000-00000000a801') ->> 'resolved')::int, 1, 'resolved');

select tests.authenticate_as('fo_member');
-- members read the report
select is(jsonb_array_length(public.forecast_report() -> 'budgets'), 1, 'a member reads the budget forecast');
-- but cannot write forecasts
select throws_ok($$ update public.spend_forecasts set forecast = 0 $$, '42501', null, 'users cannot write forecasts');
select tests.clear_authentication();

select * from finish();
rollback;
