-- What the intelligence jobs write: recommendations, routing rules, anomalies.

create table public.recommendations (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  category text not null,
  scope_type text,
  scope_value text,
  fingerprint text not null,
  title text not null,
  description text not null default '',
  current_monthly_cost numeric(14, 4),
  projected_monthly_cost numeric(14, 4),
  estimated_monthly_savings numeric(14, 4),
  savings_method text,
  confidence numeric(4, 3) constraint confidence_is_a_probability check (confidence between 0 and 1),
  priority text constraint priority_is_known check (priority in ('low', 'medium', 'high', 'critical')),
  risk text constraint risk_is_known check (risk in ('low', 'medium', 'high')),
  effort text constraint effort_is_known check (effort in ('low', 'medium', 'high')),
  implementation_steps jsonb not null default '[]',
  evidence jsonb not null default '{}',
  suggested_rule jsonb,
  status text not null default 'open' constraint status_is_known
    check (status in ('open', 'under_review', 'applied', 'dismissed', 'expired')),
  dismiss_reason text,
  applied_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A detector that fires again updates its open recommendation instead of adding a duplicate.
  constraint one_recommendation_per_pattern unique (org_id, fingerprint)
);
create index recommendations_org_status_idx on public.recommendations (org_id, status);
create trigger touch_updated_at before update on public.recommendations
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.recommendations', 'recommendations');
grant select, delete on public.recommendations to authenticated;
grant update (status, dismiss_reason, applied_at) on public.recommendations to authenticated;

create table public.routing_rules (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  name text not null,
  priority integer not null default 100,
  conditions jsonb not null default '{}',
  action jsonb not null,
  traffic_share numeric(4, 3) not null default 1
    constraint traffic_share_is_a_fraction check (traffic_share > 0 and traffic_share <= 1),
  recommendation_id uuid references public.recommendations (id) on delete set null,
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index routing_rules_org_id_idx on public.routing_rules (org_id, priority);
create trigger touch_updated_at before update on public.routing_rules
  for each row execute function private.touch_updated_at();
select private.create_tenant_policies('public.routing_rules', 'routing');
grant select, insert, update, delete on public.routing_rules to authenticated;

create table public.anomalies (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  metric text not null,
  dimension text not null default 'organization',
  dimension_value text,
  severity text not null constraint severity_is_known check (severity in ('low', 'medium', 'high', 'critical')),
  window_start timestamptz not null,
  window_end timestamptz,
  expected_value numeric,
  actual_value numeric,
  money_involved numeric(14, 4),
  status text not null default 'open' constraint status_is_known
    check (status in ('open', 'closed', 'acknowledged')),
  details jsonb not null default '{}',
  created_at timestamptz not null default now(),
  constraint window_end_is_after_start check (window_end is null or window_end >= window_start)
);
create index anomalies_org_window_idx on public.anomalies (org_id, window_start desc);
select private.create_tenant_policies('public.anomalies', 'anomalies');
grant select, delete on public.anomalies to authenticated;
grant update (status) on public.anomalies to authenticated;
