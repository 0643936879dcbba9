-- Weekly reports go out through the alert outbox, so they are retried with backoff and sent once per
-- recipient however often the job runs: a report delivery (kind 'report') names the report instead of an
-- alert event. Each report is emailed to the organization's owners and admins (one delivery whose
-- channel id is the organization's own id, since no rule holds that channel) and sent to every alert
-- channel marked `"reports": true`.

-- ---------------------------------------------------------------- the channel flag
-- Same checks as before, plus: `reports` is a boolean, and PagerDuty (which pages someone) takes no reports.
create or replace function private.check_alert_channels() returns trigger
language plpgsql volatile set search_path = '' as $$
declare
  c jsonb;
begin
  for c in select * from jsonb_array_elements(new.channels) loop
    if jsonb_typeof(c) <> 'object' or not (c ? 'id') or not (c ? 'type') then
      raise exception 'channels: each channel is an object with an id and a type' using errcode = '22023',
        column = 'channels';
    end if;
    if c ->> 'type' not in ('slack', 'webhook', 'email', 'pagerduty') then
      raise exception 'channels: unknown channel type %', c ->> 'type' using errcode = '22023', column = 'channels';
    end if;
    if c ? 'secret' or c ? 'routing_key' or (c ->> 'type' = 'slack' and c ? 'url') then
      raise exception 'channels: credentials are stored encrypted, never in the channel list'
        using errcode = '22023', column = 'channels';
    end if;
    if c ? 'reports' and jsonb_typeof(c -> 'reports') <> 'boolean' then
      raise exception 'channels: reports is true or false' using errcode = '22023', column = 'channels';
    end if;
    if c ->> 'type' = 'pagerduty' and coalesce((c ->> 'reports')::boolean, false) then
      raise exception 'channels: a PagerDuty channel pages someone; it cannot receive weekly reports'
        using errcode = '22023', column = 'channels';
    end if;
  end loop;
  if (select count(distinct x ->> 'id') from jsonb_array_elements(new.channels) x) <> jsonb_array_length(new.channels) then
    raise exception 'channels: channel ids must be distinct' using errcode = '22023', column = 'channels';
  end if;
  return new;
end
$$;
comment on function private.check_alert_channels() is
  'Trigger: channels have ids and known types, carry no plaintext credential, and only non-PagerDuty ones take reports.';
comment on column public.alert_rules.channels is
  'Delivery targets; webhook secrets are stored encrypted by the service, never returned in plaintext. A channel '
  'with "reports": true also receives the weekly reports.';

-- ---------------------------------------------------------------- the outbox
alter table private.alert_deliveries
  alter column event_id drop not null,
  add column report_id uuid references public.reports (id) on delete cascade,
  drop constraint kind_is_trigger_or_resolve,
  add constraint kind_is_known check (kind in ('trigger', 'resolve', 'report')),
  add constraint delivers_an_event_or_a_report
    check (num_nonnulls(event_id, report_id) = 1 and (kind = 'report') = (report_id is not null));
comment on column private.alert_deliveries.report_id is
  'The weekly report delivered (kind report); event_id is then null. channel_id = org_id: the owners and admins.';
create unique index alert_deliveries_one_per_report_and_channel_idx
  on private.alert_deliveries (report_id, channel_id) where report_id is not null;
grant select (report_id) on private.alert_deliveries to authenticated;

-- Queued in the transaction that stores the report: no report without its deliveries, none twice.
-- Definer: only the service writes the outbox.
create function private.enqueue_report_deliveries() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into private.alert_deliveries (org_id, report_id, channel_id, channel_type, kind)
  select new.org_id, new.id, new.org_id, 'email', 'report'
   where exists (select 1 from public.organization_members m join auth.users u on u.id = m.user_id
                  where m.org_id = new.org_id and m.role in ('owner', 'admin') and u.email is not null)
  on conflict do nothing;
  insert into private.alert_deliveries (org_id, report_id, rule_id, channel_id, channel_type, kind)
  select new.org_id, new.id, r.id, (c ->> 'id')::uuid, c ->> 'type', 'report'
    from public.alert_rules r
   cross join lateral jsonb_array_elements(r.channels) c
   where r.org_id = new.org_id and coalesce((c ->> 'reports')::boolean, false)
     and not coalesce((c ->> 'disabled')::boolean, false) and c ->> 'type' <> 'pagerduty'
  on conflict do nothing;
  return null;
end
$$;
comment on function private.enqueue_report_deliveries() is
  'Trigger: queue a stored report''s deliveries: email to owners and admins, and every channel marked for reports.';
revoke all on function private.enqueue_report_deliveries() from public;
create trigger enqueue_report_deliveries after insert on public.reports
  for each row execute function private.enqueue_report_deliveries();

-- The owners' and admins' addresses, read when sending, so a member who joined or left since the report
-- was written is counted as they are now.
create function private.report_recipients(org uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(jsonb_agg(distinct lower(u.email)), '[]'::jsonb)
    from public.organization_members m join auth.users u on u.id = m.user_id
   where m.org_id = org and m.role in ('owner', 'admin') and u.email is not null
$$;
comment on function private.report_recipients(uuid) is 'The email addresses of an organization''s owners and admins.';
revoke all on function private.report_recipients(uuid) from public;

-- Claim as before; a report delivery comes with its report (under `event`, with the rule id the channel
-- credential is filed under) and, for the owners and admins, an email channel made up of their addresses.
create or replace function private.claim_alert_deliveries(worker_name text, batch integer, lease interval,
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
         case when c.report_id is not null and c.channel_id = c.org_id
              then jsonb_build_object('id', c.channel_id, 'type', 'email', 'owners_and_admins', true,
                                      'to', private.report_recipients(c.org_id))
              else coalesce((select x from public.alert_rules r cross join lateral jsonb_array_elements(r.channels) x
                              where r.id = c.rule_id and x ->> 'id' = c.channel_id::text),
                            jsonb_build_object('id', c.channel_id, 'type', c.channel_type, 'removed', true)) end,
         case when c.report_id is null
              then to_jsonb(e) || jsonb_build_object('rule_name', (select r.name from public.alert_rules r
                                                                    where r.id = e.rule_id))
              else jsonb_build_object('id', rp.id, 'org_id', rp.org_id, 'rule_id', c.rule_id, 'report', to_jsonb(rp)) end,
         o.name
    from claimed c
    left join public.alert_events e on e.id = c.event_id
    left join public.reports rp on rp.id = c.report_id
    join public.organizations o on o.id = c.org_id
$$;
comment on function private.claim_alert_deliveries(text, integer, interval, uuid) is
  'Claim due alert and report deliveries (FOR UPDATE SKIP LOCKED, under a lease) with their channel, event or '
  'report, and organization.';
revoke all on function private.claim_alert_deliveries(text, integer, interval, uuid) from public;
