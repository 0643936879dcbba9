-- Alert delivery outbox: one row per (event, channel, trigger|resolve), written by a trigger in the
-- transaction that raises or resolves the event, so no alert is raised without its deliveries. The
-- worker claims due rows with FOR UPDATE SKIP LOCKED under a lease, sends, and records the outcome;
-- failures back off exponentially, and a delivery that finally fails stays, with its last error.

create table private.alert_deliveries (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  event_id uuid not null references public.alert_events (id) on delete cascade,
  rule_id uuid references public.alert_rules (id) on delete set null,
  channel_id uuid not null,
  channel_type text not null,
  kind text not null constraint kind_is_trigger_or_resolve check (kind in ('trigger', 'resolve')),
  status text not null default 'pending'
    constraint status_is_known check (status in ('pending', 'sending', 'delivered', 'failed')),
  attempts integer not null default 0,
  max_attempts integer not null default 8 constraint max_attempts_is_positive check (max_attempts >= 1),
  next_attempt_at timestamptz not null default now(),
  lease_expires_at timestamptz,
  worker text,
  last_status_code integer,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  delivered_at timestamptz,
  constraint one_delivery_per_event_channel_and_kind unique (event_id, channel_id, kind),
  constraint sending_deliveries_hold_a_lease check (status <> 'sending' or lease_expires_at is not null)
);
comment on table private.alert_deliveries is
  'Outbox: one delivery per alert event, channel and kind (trigger/resolve); failed ones are kept with their error.';
comment on column private.alert_deliveries.id is
  'Also the webhook-id (msg_<id without dashes>): the same on every retry, so receivers can drop repeats.';
create index alert_deliveries_due_idx on private.alert_deliveries (next_attempt_at) where status = 'pending';
create index alert_deliveries_lease_idx on private.alert_deliveries (lease_expires_at) where status = 'sending';
create index alert_deliveries_event_idx on private.alert_deliveries (event_id);

alter table private.alert_deliveries enable row level security;
create policy "members with alerts.read read their organizations' deliveries" on private.alert_deliveries
  for select to authenticated using (org_id = any ((select private.org_ids_with('alerts.read'))::uuid[]));
grant select (id, org_id, event_id, rule_id, channel_id, channel_type, kind, status, attempts, max_attempts,
              next_attempt_at, last_status_code, last_error, created_at, updated_at, delivered_at)
  on private.alert_deliveries to authenticated;

-- ---------------------------------------------------------------- enqueue
-- On raise: a trigger delivery per enabled channel of the event's rule. On resolve: a resolve delivery
-- per channel that was sent the trigger (PagerDuty closes its incident by dedup key; the others are told).
-- Definer: users resolve events, but only the service writes the outbox.
create function private.enqueue_alert_deliveries() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    insert into private.alert_deliveries (org_id, event_id, rule_id, channel_id, channel_type, kind)
    select new.org_id, new.id, r.id, (c ->> 'id')::uuid, c ->> 'type', 'trigger'
      from public.alert_rules r
     cross join lateral jsonb_array_elements(r.channels) c
     where r.id = new.rule_id and not coalesce((c ->> 'disabled')::boolean, false)
    on conflict do nothing;
  elsif new.status = 'resolved' and old.status <> 'resolved' then
    insert into private.alert_deliveries (org_id, event_id, rule_id, channel_id, channel_type, kind)
    select d.org_id, d.event_id, d.rule_id, d.channel_id, d.channel_type, 'resolve'
      from private.alert_deliveries d
     where d.event_id = new.id and d.kind = 'trigger'
    on conflict do nothing;
  end if;
  return null;
end
$$;
comment on function private.enqueue_alert_deliveries() is
  'Trigger: queue a delivery per enabled channel when an alert event is raised, and a resolve per channel when resolved.';
create trigger enqueue_alert_deliveries after insert or update of status on public.alert_events
  for each row execute function private.enqueue_alert_deliveries();

-- ---------------------------------------------------------------- claim, finish
-- Claim up to `batch` due deliveries (of one organization when only_org is given): pending ones whose
-- backoff has passed, and sending ones whose lease expired (their worker died mid-send). Each comes
-- with what sending needs except the credential, which the worker decrypts from
-- private.alert_channel_secrets.
create function private.claim_alert_deliveries(worker_name text, batch integer, lease interval,
                                               only_org uuid default null)
returns table (delivery_id uuid, attempt integer, kind text, channel jsonb, event jsonb, org_name text)
language sql volatile set search_path = '' as $$
  with due as (
    select d.id from private.alert_deliveries d
     where ((d.status = 'pending' and d.next_attempt_at <= now())
            or (d.status = 'sending' and d.lease_expires_at <= now()))
       and (only_org is null or d.org_id = only_org)
     order by d.next_attempt_at
     limit batch
       for update skip locked
  ), claimed as (
    update private.alert_deliveries d
       set status = 'sending', attempts = d.attempts + 1, worker = worker_name,
           lease_expires_at = now() + lease, updated_at = now()
      from due where d.id = due.id
    returning d.*
  )
  select c.id, c.attempts, c.kind,
         coalesce((select x from public.alert_rules r cross join lateral jsonb_array_elements(r.channels) x
                    where r.id = c.rule_id and x ->> 'id' = c.channel_id::text),
                  jsonb_build_object('id', c.channel_id, 'type', c.channel_type, 'removed', true)),
         to_jsonb(e) || jsonb_build_object('rule_name', (select r.name from public.alert_rules r where r.id = e.rule_id)),
         o.name
    from claimed c
    join public.alert_events e on e.id = c.event_id
    join public.organizations o on o.id = c.org_id
$$;
comment on function private.claim_alert_deliveries(text, integer, interval, uuid) is
  'Claim due alert deliveries (FOR UPDATE SKIP LOCKED, under a lease) with their channel, event and organization.';

-- Record one attempt. outcome: delivered; retry (backs off by retry_in, or fails for good past
-- max_attempts); failed (no point retrying: blocked address, 410 Gone, channel removed). Ignored
-- (false) when the attempt is no longer the current one: another worker took the delivery over.
create function private.finish_alert_delivery(delivery uuid, attempt integer, outcome text, status_code integer,
                                              error text, retry_in interval)
returns boolean
language sql volatile set search_path = '' as $$
  with done as (
    update private.alert_deliveries d
       set status = case when outcome = 'delivered' then 'delivered'
                         when outcome = 'retry' and d.attempts < d.max_attempts then 'pending'
                         else 'failed' end,
           next_attempt_at = case when outcome = 'retry' then now() + retry_in else d.next_attempt_at end,
           delivered_at = case when outcome = 'delivered' then now() end,
           last_status_code = status_code, last_error = left(error, 1000),
           lease_expires_at = null, updated_at = now()
     where d.id = delivery and d.attempts = attempt and d.status = 'sending'
    returning 1
  )
  select exists (select 1 from done)
$$;
comment on function private.finish_alert_delivery(uuid, integer, text, integer, text, interval) is
  'Record a delivery attempt: delivered, retry (after retry_in; failed past max_attempts) or failed.';

revoke all on function private.claim_alert_deliveries(text, integer, interval, uuid),
  private.finish_alert_delivery(uuid, integer, text, integer, text, interval) from public;

-- Failed deliveries are shown, not lost: a user may queue one again (it keeps its webhook-id).
create function public.retry_alert_delivery(delivery uuid) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  org uuid;
begin
  select d.org_id into org from private.alert_deliveries d where d.id = delivery;
  if org is null or not private.has_permission(org, 'alerts.write') then
    raise exception 'no such delivery in an organization whose alerts you may write' using errcode = '42501';
  end if;
  update private.alert_deliveries d
     set status = 'pending', next_attempt_at = now(), max_attempts = d.attempts + 1, updated_at = now()
   where d.id = delivery and d.status = 'failed';
  return found;
end
$$;
comment on function public.retry_alert_delivery(uuid) is
  'Queue a failed alert delivery once more (caller needs alerts.write in its organization).';
revoke all on function public.retry_alert_delivery(uuid) from public;
grant execute on function public.retry_alert_delivery(uuid) to authenticated;
