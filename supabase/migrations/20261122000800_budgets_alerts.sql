-- Budgets, alert rules and the alert events they raise. The worker issue adds spend tracking and
-- delivery; this file holds the configuration and its isolation.

create table public.budgets (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  name text not null constraint name_is_not_blank check (btrim(name) <> ''),
  amount numeric(14, 2) not null constraint amount_is_positive check (amount > 0),
  currency text not null default 'USD',
  period text not null constraint period_is_known check (period in ('daily', 'weekly', 'monthly')),
  week_start smallint not null default 1 constraint week_start_is_a_weekday check (week_start between 0 and 6),
  scope_type text not null default 'organization' constraint scope_type_is_known
    check (scope_type in ('organization', 'team', 'project', 'model', 'feature', 'user', 'api_key')),
  scope_id text,
  alert_thresholds integer[] not null default array[50, 75, 90, 100]
    constraint thresholds_are_between_1_and_1000 check (1 <= all (alert_thresholds) and 1000 >= all (alert_thresholds)),
  hard_limit boolean not null default false,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint scope_id_is_given_unless_organization
    check ((scope_type = 'organization') = (scope_id is null))
);
create index budgets_org_id_idx on public.budgets (org_id);
create trigger touch_updated_at before update on public.budgets
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.budgets', 'budgets');
grant select, insert, update, delete on public.budgets to authenticated;

create table public.alert_rules (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  name text not null constraint name_is_not_blank check (btrim(name) <> ''),
  type text not null constraint type_is_known check (type in
    ('budget_threshold', 'spend_spike', 'error_rate', 'latency', 'anomaly', 'forecast_overrun')),
  condition jsonb not null default '{}',
  channels jsonb not null default '[]' constraint channels_is_an_array check (jsonb_typeof(channels) = 'array'),
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on column public.alert_rules.channels is
  'Delivery targets; webhook secrets are stored encrypted by the service, never returned in plaintext.';
create index alert_rules_org_id_idx on public.alert_rules (org_id);
create trigger touch_updated_at before update on public.alert_rules
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.alert_rules', 'alerts');
grant select, insert, update, delete on public.alert_rules to authenticated;

create table public.alert_events (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  rule_id uuid references public.alert_rules (id) on delete set null,
  budget_id uuid references public.budgets (id) on delete set null,
  dedup_key text not null,
  severity text not null default 'warning' constraint severity_is_known
    check (severity in ('info', 'warning', 'critical')),
  title text not null,
  details jsonb not null default '{}',
  status text not null default 'open' constraint status_is_known
    check (status in ('open', 'acknowledged', 'resolved')),
  acknowledged_at timestamptz,
  resolved_at timestamptz,
  created_at timestamptz not null default now(),
  -- One event per crossing (rule, budget, period, threshold), however many workers race to raise it.
  constraint one_event_per_dedup_key unique (org_id, dedup_key)
);
create index alert_events_org_created_idx on public.alert_events (org_id, created_at desc);
select private.create_tenant_policies('public.alert_events', 'alerts');
grant select, delete on public.alert_events to authenticated;
grant update (status, acknowledged_at, resolved_at) on public.alert_events to authenticated;
