-- Strict budget enforcement holds spend before a call: a reservation is the call's maximum cost, held
-- against every hard budget that covers its attribution until the usage event that reports the call
-- commits it (its actual cost then counts through the rollups) or its TTL passes and the sweep
-- releases it. Functions live in 20261122003600; this file holds the state and who sees it.

create table private.budget_reservations (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  api_key_id uuid references public.api_keys (id) on delete set null,
  provider text not null,
  model text not null,
  amount_usd numeric(20, 12) not null constraint amount_is_not_negative check (amount_usd >= 0),
  attribution jsonb not null default '{}',
  status text not null default 'open' constraint status_is_known
    check (status in ('open', 'committed', 'released', 'expired')),
  request_id text,
  actual_cost_usd numeric(20, 12),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  closed_at timestamptz,
  constraint closed_reservations_say_when check ((status = 'open') = (closed_at is null))
);
comment on table private.budget_reservations is
  'Strict-mode holds: a call''s maximum cost reserved before it is made, open until committed, released or expired.';
comment on column private.budget_reservations.actual_cost_usd is 'Cost of the reported call, when committed.';
create index budget_reservations_open_expiry_idx on private.budget_reservations (expires_at) where status = 'open';
create index budget_reservations_org_created_idx on private.budget_reservations (org_id, created_at desc);

-- One row per (reservation, budget): what each hard budget holds for open reservations. Deleted when
-- the reservation closes, so the sum over a budget's rows is exactly what it holds now.
create table private.budget_holds (
  reservation_id uuid not null references private.budget_reservations (id) on delete cascade,
  budget_id uuid not null references public.budgets (id) on delete cascade,
  org_id uuid not null references public.organizations (id) on delete cascade,
  amount_usd numeric(20, 12) not null,
  expires_at timestamptz not null,
  primary key (budget_id, reservation_id)
);
comment on table private.budget_holds is 'Spend held against a hard budget by an open reservation (until expires_at).';
create index budget_holds_reservation_idx on private.budget_holds (reservation_id);

-- Members who read budgets see what is reserved against them; only the service writes.
alter table private.budget_reservations enable row level security;
alter table private.budget_holds enable row level security;
create policy "members with budgets.read read their organizations' reservations" on private.budget_reservations
  for select to authenticated using (org_id = any ((select private.org_ids_with('budgets.read'))::uuid[]));
create policy "members with budgets.read read their organizations' holds" on private.budget_holds
  for select to authenticated using (org_id = any ((select private.org_ids_with('budgets.read'))::uuid[]));
grant select on private.budget_reservations, private.budget_holds to authenticated;
