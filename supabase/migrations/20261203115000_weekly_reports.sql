-- Weekly reports (worker job `weekly_reports`): each organization's executive summary of one UTC week
-- (Monday 00:00 to Monday 00:00), written from evidence computed here, stored once per organization and
-- week, and read by every member of the organization.
--
-- The evidence: spend this week and the week before and the change; the top drivers of the change by
-- model, feature and team; the anomalies that started in the week; budgets at risk with their projected
-- spend; recommendations applied (this week, and all applied so far with their realised savings) and the
-- savings still open. Money is rounded to 4 places and every change is computed from the rounded figures,
-- so a figure the prose cites is one the reader can add up from the evidence.

-- ---------------------------------------------------------------- evidence
create function public.weekly_report_evidence(org uuid, week_start date) returns jsonb
language sql stable security invoker set search_path = '' as $$
  with bounds as (
    select (week_start::timestamp at time zone 'UTC') as ws,
           ((week_start + 7)::timestamp at time zone 'UTC') as we,
           ((week_start - 7)::timestamp at time zone 'UTC') as ps
  ), u as materialized (
    select d.bucket >= b.ws as this_week, coalesce(d.canonical_model, d.model) as model, d.feature, d.team,
           d.requests, d.cost_usd
    from analytics.usage_daily d, bounds b
    where d.org_id = org and d.bucket >= b.ps and d.bucket < b.we
  ), tot as (
    select round(coalesce(sum(u.cost_usd) filter (where u.this_week), 0), 4) as cw,
           round(coalesce(sum(u.cost_usd) filter (where not u.this_week), 0), 4) as cp,
           coalesce(sum(u.requests) filter (where u.this_week), 0) as rw,
           coalesce(sum(u.requests) filter (where not u.this_week), 0) as rp
    from u
  ), by_value as (
    select v.dim, coalesce(v.value, '(none)') as value,
           round(coalesce(sum(u.cost_usd) filter (where u.this_week), 0), 4) as cw,
           round(coalesce(sum(u.cost_usd) filter (where not u.this_week), 0), 4) as cp
    from u cross join lateral (values ('model', u.model), ('feature', u.feature), ('team', u.team)) v(dim, value)
    group by v.dim, coalesce(v.value, '(none)')
  ), ranked as (
    select x.*, row_number() over (partition by x.dim order by abs(x.cw - x.cp) desc, x.value) as rank
    from by_value x where x.cw <> x.cp
  ), drivers as (
    select jsonb_object_agg(d.dim, coalesce(r.items, '[]'::jsonb)) as j
    from (values ('model'), ('feature'), ('team')) d(dim)
    left join (
      select r.dim, jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'value', r.value, 'this_week_usd', trim_scale(r.cw), 'previous_week_usd', trim_scale(r.cp),
               'change_usd', trim_scale(r.cw - r.cp),
               'change_pct', trim_scale(round(100 * (r.cw - r.cp) / nullif(r.cp, 0), 1)),
               'share_of_change_pct', trim_scale(round(100 * (r.cw - r.cp) / nullif(t.cw - t.cp, 0), 1))))
             order by r.rank) as items
      from ranked r, tot t where r.rank <= 3 group by r.dim
    ) r on r.dim = d.dim
  ), anomalies as (
    select count(*) as n, count(*) filter (where a.severity in ('high', 'critical')) as serious,
           round(coalesce(sum(a.money_involved), 0), 4) as money,
           coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
             'severity', a.severity, 'metric', a.metric, 'dimension', a.dimension,
             'dimension_value', a.dimension_value, 'window_start', private.evidence_time(a.window_start),
             'money_involved_usd', trim_scale(round(a.money_involved, 4)), 'status', a.status)) order by a.rank)
             filter (where a.rank <= 5), '[]'::jsonb) as items
    from (select x.*, row_number() over (order by x.money_involved desc nulls last, x.window_start, x.id) as rank
          from public.anomalies x, bounds b
          where x.org_id = org and x.window_start >= b.ws and x.window_start < b.we) a
  ), budgets as (
    select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
             'name', x.name, 'period', x.period, 'scope_type', x.scope_type, 'scope_id', x.scope_id,
             'status', x.status, 'amount_usd', trim_scale(x.amount),
             'current_spend_usd', trim_scale(round(x.current_spend, 4)),
             'projected_spend_usd', trim_scale(round(x.projected_spend, 4)),
             'spent_pct', trim_scale(round(100 * x.current_spend / x.amount, 1)),
             'projected_pct', trim_scale(round(100 * x.projected_spend / x.amount, 1)),
             'period_end', private.evidence_time(x.period_end)))
             order by x.projected_spend / x.amount desc, x.name), '[]'::jsonb) as j
    from (select b.name, b.period, b.scope_type, b.scope_id, b.amount, s.*
          from public.budgets b cross join lateral private.budget_state(b) s
          where b.org_id = org and b.enabled) x
    where x.status <> 'ok' or x.projected_spend >= x.amount
  ), recs as (
    select count(*) filter (where r.status = 'applied' and r.applied_at < b.we) as applied,
           count(*) filter (where r.status = 'applied' and r.applied_at >= b.ws and r.applied_at < b.we) as applied_week,
           count(*) filter (where r.status = 'applied' and r.applied_at < b.we
                              and r.realised_monthly_savings is not null) as measured,
           round(coalesce(sum(r.realised_monthly_savings) filter (where r.status = 'applied' and r.applied_at < b.we), 0),
                 4) as realised,
           round(coalesce(sum(r.estimated_monthly_savings) filter (where r.status = 'applied' and r.applied_at < b.we), 0),
                 4) as estimated_applied,
           count(*) filter (where r.status = 'open') as open,
           round(coalesce(sum(r.estimated_monthly_savings) filter (where r.status = 'open'), 0), 4) as estimated_open
    from public.recommendations r, bounds b
    where r.org_id = org
  ), applied_items as (
    select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
             'title', x.title, 'category', x.category, 'applied_at', private.evidence_time(x.applied_at),
             'applied_this_week', x.this_week,
             'estimated_monthly_savings_usd', trim_scale(round(x.estimated_monthly_savings, 4)),
             'realised_monthly_savings_usd', trim_scale(round(x.realised_monthly_savings, 4))))
             order by x.rank), '[]'::jsonb) as j
    from (select r.*, r.applied_at >= b.ws as this_week,
                 row_number() over (order by r.applied_at >= b.ws desc, r.realised_monthly_savings desc nulls last,
                                    r.estimated_monthly_savings desc nulls last, r.id) as rank
          from public.recommendations r, bounds b
          where r.org_id = org and r.status = 'applied' and r.applied_at < b.we) x
    where x.rank <= 5
  )
  select jsonb_build_object(
    'subject', 'weekly_report',
    'organization', (select o.name from public.organizations o where o.id = org),
    'period', jsonb_build_object('start', private.evidence_time(b.ws), 'end', private.evidence_time(b.we)),
    'previous_period', jsonb_build_object('start', private.evidence_time(b.ps), 'end', private.evidence_time(b.ws)),
    'spend', jsonb_strip_nulls(jsonb_build_object(
      'this_week_usd', trim_scale(t.cw), 'previous_week_usd', trim_scale(t.cp), 'change_usd', trim_scale(t.cw - t.cp),
      'change_pct', trim_scale(round(100 * (t.cw - t.cp) / nullif(t.cp, 0), 1)),
      'requests', t.rw, 'previous_requests', t.rp)),
    'top_drivers', d.j,
    'anomalies', jsonb_build_object('count', a.n, 'high_or_critical', a.serious,
                                    'money_involved_usd', trim_scale(a.money), 'largest', a.items),
    'budgets_at_risk', bu.j,
    'recommendations', jsonb_build_object(
      'applied_this_week', r.applied_week, 'applied_total', r.applied, 'measured', r.measured,
      'realised_monthly_savings_usd', trim_scale(r.realised),
      'estimated_monthly_savings_of_applied_usd', trim_scale(r.estimated_applied),
      'applied', ai.j, 'open', r.open, 'open_estimated_monthly_savings_usd', trim_scale(r.estimated_open)))
  from bounds b, tot t, drivers d, anomalies a, budgets bu, recs r, applied_items ai
  where exists (select 1 from public.organizations o where o.id = org)  -- null: no such organization, or RLS hides it
$$;
comment on function public.weekly_report_evidence(uuid, date) is
  'The figures of one organization''s weekly report for the UTC week from week_start: spend and change, top '
  'drivers by model, feature and team, anomalies, budgets at risk, applied and open recommendations. Run as the caller.';
revoke all on function public.weekly_report_evidence(uuid, date) from public;
grant execute on function public.weekly_report_evidence(uuid, date) to authenticated, service_role;

-- ---------------------------------------------------------------- reports
create table public.reports (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  period_start timestamptz not null,
  period_end timestamptz not null,
  headline text not null,
  narrative text not null,
  method text not null constraint method_is_llm_or_template check (method in ('llm', 'template')),
  grounded boolean not null,
  fallback_reason text constraint fallback_reason_is_known
    check (fallback_reason in ('llm_off', 'ai_cap_reached', 'ungrounded', 'llm_failed')),
  note text,
  provider text,
  model text,
  llm_calls integer not null default 0 constraint llm_calls_is_not_negative check (llm_calls >= 0),
  input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  cost_usd numeric(14, 6) not null default 0,
  rejected jsonb not null default '[]',
  evidence jsonb not null,
  created_at timestamptz not null default now(),
  constraint period_end_is_after_start check (period_end > period_start),
  constraint a_template_says_why check ((method = 'template') = (fallback_reason is not null)),
  constraint an_llm_report_names_its_model check (method = 'template' or model is not null),
  -- Rerunning the job for a week never writes (or emails) a second report.
  constraint one_report_per_organization_and_week unique (org_id, period_start)
);
comment on table public.reports is 'Weekly executive summaries, one per organization and UTC week, with their evidence.';
comment on column public.reports.period_start is 'Monday 00:00 UTC of the week reported.';
comment on column public.reports.period_end is 'The next Monday 00:00 UTC (exclusive).';
comment on column public.reports.headline is 'One sentence: the week''s spend and its change.';
comment on column public.reports.narrative is 'The summary: drivers, anomalies, budgets at risk, recommendations.';
comment on column public.reports.method is
  'llm: written by the model, every number checked against the evidence; template: built from the evidence.';
comment on column public.reports.grounded is 'Every number of headline and narrative was found in the evidence.';
comment on column public.reports.fallback_reason is
  'Why a template was stored: llm_off (no provider key), ai_cap_reached, ungrounded (the model cited numbers '
  'absent from the evidence twice), llm_failed (provider errors or malformed answers).';
comment on column public.reports.note is 'For operators: e.g. how to turn the LLM on.';
comment on column public.reports.provider is 'Provider of the call whose answer was kept (or the last call made).';
comment on column public.reports.model is 'Model of that call.';
comment on column public.reports.llm_calls is 'Provider calls spent on this report, rejected ones included.';
comment on column public.reports.input_tokens is 'Input tokens of those calls.';
comment on column public.reports.output_tokens is 'Output tokens of those calls.';
comment on column public.reports.cost_usd is 'AI spend of those calls, at our own prices.';
comment on column public.reports.rejected is
  'One entry per rejected answer: {"attempt", "model", "unsupported": [numbers as written]}.';
comment on column public.reports.evidence is 'The figures the report may cite (public.weekly_report_evidence).';
comment on column public.reports.created_at is 'When the report was written.';
create index reports_org_period_idx on public.reports (org_id, period_start desc);
create trigger forbid_org_change before update on public.reports
  for each row execute function private.forbid_org_change();

-- Every member of the organization reads its reports; only the service (the worker) writes them.
select private.create_tenant_policies('public.reports', 'organization', writable => false);
grant select on public.reports to authenticated;

-- ---------------------------------------------------------------- read
-- What GET /functions/v1/reports answers, run as the caller: newest week first, without the evidence.
create function public.report_list(org uuid default null, max_rows integer default 20, skip integer default 0)
returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object(
    'data', coalesce((select jsonb_agg(x.j order by x.period_start desc, x.org_id) from (
      select r.period_start, r.org_id,
             jsonb_build_object('id', r.id, 'org_id', r.org_id, 'period_start', r.period_start,
                                'period_end', r.period_end, 'headline', r.headline, 'narrative', r.narrative,
                                'method', r.method, 'grounded', r.grounded, 'fallback_reason', r.fallback_reason,
                                'model', r.model, 'cost_usd', r.cost_usd, 'created_at', r.created_at) as j
      from public.reports r
      where org is null or r.org_id = org
      order by r.period_start desc, r.org_id
      limit least(greatest(max_rows, 1), 100) offset greatest(skip, 0)) x), '[]'::jsonb),
    'meta', jsonb_build_object(
      'limit', least(greatest(max_rows, 1), 100), 'offset', greatest(skip, 0),
      'total', (select count(*) from public.reports r where org is null or r.org_id = org)))
$$;
comment on function public.report_list(uuid, integer, integer) is
  'The weekly reports the caller may read, newest week first, a page at a time ({"data", "meta"}).';
revoke all on function public.report_list(uuid, integer, integer) from public;
grant execute on function public.report_list(uuid, integer, integer) to authenticated, service_role;

create function public.report_of(report uuid) returns jsonb
language sql stable security invoker set search_path = '' as $$
  select to_jsonb(r) from public.reports r where r.id = report
$$;
comment on function public.report_of(uuid) is 'One weekly report the caller may read, with its evidence; null if none.';
revoke all on function public.report_of(uuid) from public;
grant execute on function public.report_of(uuid) to authenticated, service_role;
