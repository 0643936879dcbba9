-- weekly_report_evidence: the week's spend against the week before, the drivers of the change by model,
-- feature and team, the week's anomalies, budgets at risk, applied and open recommendations; run as the
-- caller, so an outsider gets null.
begin;
select plan(14);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000f501', 'weekly-a'),
                                                   ('00000000-0000-0000-0000-00000000f502', 'weekly-b');
select tests.create_user(r) from unnest(array['wr_viewer', 'wr_other']) r;
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-0000-0000-00000000f501', tests.uid('wr_viewer'), 'viewer'),
  ('00000000-0000-0000-0000-00000000f502', tests.uid('wr_other'), 'owner');

-- the last full UTC week, and the one before it
create temp table w on commit drop as
select (date_trunc('week', now() at time zone 'UTC') - interval '7 days')::date as d,
       (date_trunc('week', now() at time zone 'UTC') - interval '7 days') at time zone 'UTC' as ws;
grant select on w to authenticated;

-- previous week: gpt-4o 10.00 (search), gpt-4o-mini 5.00 (no team); this week: gpt-4o 30.00 (search),
-- gpt-4o-mini 2.00, claude-haiku-4-5 1.00 (new); the other organization and the current week do not count
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, feature, cost_usd, priced)
select '00000000-0000-0000-0000-00000000f501'::uuid, w.ws + x.at, gen_random_uuid()::text, x.provider, x.model, x.team,
       x.feature, x.cost, true
from w, (values (interval '-6 days', 'openai', 'gpt-4o', 'search', 'chat', 6.0),
                (interval '-2 days', 'openai', 'gpt-4o', 'search', 'chat', 4.0),
                (interval '-1 day', 'openai', 'gpt-4o-mini', null, 'chat', 5.0),
                (interval '1 day', 'openai', 'gpt-4o', 'search', 'chat', 20.0),
                (interval '6 days 23 hours', 'openai', 'gpt-4o', 'search', 'summarize', 10.0),
                (interval '3 days', 'openai', 'gpt-4o-mini', null, 'chat', 2.0),
                (interval '4 days', 'anthropic', 'claude-haiku-4-5', 'ops', 'chat', 1.0),
                (interval '7 days', 'openai', 'gpt-4o', 'search', 'chat', 500.0)) x(at, provider, model, team, feature, cost)
union all
select '00000000-0000-0000-0000-00000000f502'::uuid, w.ws + interval '1 day', gen_random_uuid()::text, 'openai', 'gpt-4o',
       null, null, 99, true from w;

-- anomalies: two in the week, one the week before
insert into public.anomalies (org_id, metric, dimension, dimension_value, severity, window_start, money_involved)
select '00000000-0000-0000-0000-00000000f501'::uuid, 'cost', x.dim, x.val, x.sev, w.ws + x.at, x.money
from w, (values ('feature', 'chat', 'high', interval '1 day 13 hours', 7.5),
                ('organization', null, 'low', interval '2 days', 2.25),
                ('organization', null, 'critical', interval '-1 day', 100)) x(dim, val, sev, at, money);

-- recommendations: one applied this week (realised 12.5), one applied before (not yet measured), one
-- open, one dismissed
insert into public.recommendations (org_id, category, fingerprint, title, estimated_monthly_savings, status,
                                    applied_at, realised_monthly_savings)
select '00000000-0000-0000-0000-00000000f501'::uuid, 'task_aware_routing', x.fp, x.title, x.est, x.status, w.ws + x.at, x.real
from w, (values ('wr1', 'Route chat to gpt-4o-mini', 20, 'applied', interval '2 days', 12.5),
                ('wr2', 'Cache repeated prompts', 7, 'applied', interval '-20 days', null),
                ('wr3', 'Trim long prompts', 100, 'open', null, null),
                ('wr4', 'Batch nightly jobs', 50, 'dismissed', null, null)) x(fp, title, est, status, at, real);

-- budgets: a daily cap already passed today, and one far from its amount
insert into public.budgets (org_id, name, amount, period) values
  ('00000000-0000-0000-0000-00000000f501', 'daily cap', 10, 'daily'),
  ('00000000-0000-0000-0000-00000000f501', 'roomy', 1000000, 'monthly');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
values ('00000000-0000-0000-0000-00000000f501', now(), gen_random_uuid()::text, 'openai', 'gpt-4o', 25, true);

create temp table ev on commit drop as
select public.weekly_report_evidence('00000000-0000-0000-0000-00000000f501', (select d from w)) as e;

-- spend: 33 against 15, +18, +120%
select is((select e -> 'spend' from ev),
          '{"this_week_usd": 33, "previous_week_usd": 15, "change_usd": 18, "change_pct": 120, "requests": 4,
            "previous_requests": 3}'::jsonb, 'the week''s spend against the week before');
-- the period is the UTC week asked for
select is((select e #>> '{period,start}' from ev), (select to_char(ws at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"') from w),
          'the week starts at Monday 00:00 UTC');
-- drivers by model, largest change first; a new model has no change_pct; shares of the +18
select is((select e #> '{top_drivers,model}' from ev),
          '[{"value": "gpt-4o", "this_week_usd": 30, "previous_week_usd": 10, "change_usd": 20, "change_pct": 200,
             "share_of_change_pct": 111.1},
            {"value": "gpt-4o-mini", "this_week_usd": 2, "previous_week_usd": 5, "change_usd": -3, "change_pct": -60,
             "share_of_change_pct": -16.7},
            {"value": "claude-haiku-4-5", "this_week_usd": 1, "previous_week_usd": 0, "change_usd": 1,
             "share_of_change_pct": 5.6}]'::jsonb, 'drivers by model');
-- usage without a team is "(none)"; values are ranked by the size of their change
select is((select jsonb_agg(x -> 'value') from ev, jsonb_array_elements(e #> '{top_drivers,team}') x),
          '["search", "(none)", "ops"]'::jsonb, 'drivers by team, missing team as (none)');
-- the drivers of each dimension add up to the total change when no value is cut off
select is((select sum((x ->> 'change_usd')::numeric) from ev, jsonb_array_elements(e #> '{top_drivers,model}') x),
          (select (e #>> '{spend,change_usd}')::numeric from ev), 'drivers add up to the change');
-- anomalies that started in the week: count, serious ones, money, largest first
select is((select (e -> 'anomalies') - 'largest' from ev),
          '{"count": 2, "high_or_critical": 1, "money_involved_usd": 9.75}'::jsonb, 'the week''s anomalies');
select is((select (e #> '{anomalies,largest,0}') - 'window_start' - 'status' from ev),
          '{"severity": "high", "metric": "cost", "dimension": "feature", "dimension_value": "chat",
            "money_involved_usd": 7.5}'::jsonb, 'the largest anomaly first');
-- budgets at risk: the daily cap, not the roomy one; percentages are of the budget's amount
select is((select jsonb_agg(x ->> 'name') from ev, jsonb_array_elements(e -> 'budgets_at_risk') x),
          '["daily cap"]'::jsonb, 'only budgets at risk');
select ok((select (x ->> 'status') = 'exceeded' and (x ->> 'current_spend_usd')::numeric = 25
                  and (x ->> 'spent_pct')::numeric = 250
                  and (x ->> 'projected_pct')::numeric = round(100 * (x ->> 'projected_spend_usd')::numeric / 10, 1)
                  and (x ->> 'projected_spend_usd')::numeric >= 25
           from ev, jsonb_array_elements(e -> 'budgets_at_risk') x), 'spend and projection against the amount');
-- recommendations: applied this week and in total, realised savings of the measured one, open savings
select is((select (e -> 'recommendations') - 'applied' from ev),
          '{"applied_this_week": 1, "applied_total": 2, "measured": 1, "realised_monthly_savings_usd": 12.5,
            "estimated_monthly_savings_of_applied_usd": 27, "open": 1, "open_estimated_monthly_savings_usd": 100}'::jsonb,
          'applied and open recommendations');
select is((select jsonb_agg(x ->> 'title') from ev, jsonb_array_elements(e #> '{recommendations,applied}') x),
          '["Route chat to gpt-4o-mini", "Cache repeated prompts"]'::jsonb, 'this week''s applied first');
-- a week without usage says zero, with no percentage of nothing
select is(public.weekly_report_evidence('00000000-0000-0000-0000-00000000f501', '2020-01-06') -> 'spend',
          '{"this_week_usd": 0, "previous_week_usd": 0, "change_usd": 0, "requests": 0, "previous_requests": 0}'::jsonb,
          'an empty week');

-- run as the caller: a member reads their organization's figures, an outsider gets null
select tests.authenticate_as('wr_viewer');
select is((public.weekly_report_evidence('00000000-0000-0000-0000-00000000f501', (select d from w))
           #> '{spend,this_week_usd}'), '33'::jsonb, 'a member of the organization reads its evidence');
select tests.clear_authentication();
select tests.authenticate_as('wr_other');
select is(public.weekly_report_evidence('00000000-0000-0000-0000-00000000f501', (select d from w)), null,
          'another organization''s owner gets null');
select tests.clear_authentication();

select * from finish();
rollback;
