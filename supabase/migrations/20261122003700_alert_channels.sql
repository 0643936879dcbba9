-- Alert channels: where a rule's alerts go. A channel is an element of public.alert_rules.channels
-- ({"id", "type": slack|webhook|email|pagerduty, ...}). What would let someone else post as us (a
-- webhook's signing secret, a Slack incoming-webhook URL, a PagerDuty routing key) is never in that
-- column: the service encrypts it (envelope encryption, tokentra_platform/alerting/secrets.py) into
-- private.alert_channel_secrets, which no user role can read, and the column keeps a hint.

create table private.alert_channel_secrets (
  rule_id uuid not null references public.alert_rules (id) on delete cascade,
  channel_id uuid not null,
  org_id uuid not null references public.organizations (id) on delete cascade,
  ciphertext bytea not null,
  wrapped_key bytea not null,
  created_at timestamptz not null default now(),
  primary key (rule_id, channel_id)
);
alter table private.alert_channel_secrets enable row level security;
comment on table private.alert_channel_secrets is
  'Encrypted channel credentials (webhook secret, Slack URL, PagerDuty routing key); readable by the service only.';

-- Channels are checked in the database too, so no path (PostgREST included) stores a credential in the
-- clear: every channel has an id and a known type, and the credential fields are refused.
create function private.check_alert_channels() returns trigger
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
  end loop;
  if (select count(distinct x ->> 'id') from jsonb_array_elements(new.channels) x) <> jsonb_array_length(new.channels) then
    raise exception 'channels: channel ids must be distinct' using errcode = '22023', column = 'channels';
  end if;
  return new;
end
$$;
comment on function private.check_alert_channels() is
  'Trigger: channels have ids and known types and carry no plaintext credential.';
create trigger check_alert_channels before insert or update of channels on public.alert_rules
  for each row execute function private.check_alert_channels();

-- Secrets of channels removed from a rule are deleted with them. Definer: users cannot touch the table.
create function private.forget_removed_channel_secrets() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  delete from private.alert_channel_secrets s
   where s.rule_id = new.id
     and s.channel_id::text not in (select x ->> 'id' from jsonb_array_elements(new.channels) x);
  return null;
end
$$;
comment on function private.forget_removed_channel_secrets() is
  'Trigger: delete the encrypted credentials of channels no longer in a rule.';
create trigger forget_removed_channel_secrets after update of channels on public.alert_rules
  for each row execute function private.forget_removed_channel_secrets();

-- Store a channel's encrypted credential. Callable by users (the API runs as the signed-in user), so it
-- checks the caller may write the rule's organization's alerts and that the channel is in the rule.
create function private.save_alert_channel_secret(rule uuid, channel uuid, sealed bytea, wrapped bytea)
returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  org uuid;
begin
  select r.org_id into org from public.alert_rules r
   where r.id = rule and exists (select 1 from jsonb_array_elements(r.channels) x where x ->> 'id' = channel::text);
  if org is null or ((select auth.uid()) is not null and not private.has_permission(org, 'alerts.write')) then
    raise exception 'no such channel in an alert rule you may write' using errcode = '42501';
  end if;
  insert into private.alert_channel_secrets (rule_id, channel_id, org_id, ciphertext, wrapped_key)
  values (rule, channel, org, sealed, wrapped)
  on conflict (rule_id, channel_id) do update
    set ciphertext = excluded.ciphertext, wrapped_key = excluded.wrapped_key, created_at = now();
end
$$;
comment on function private.save_alert_channel_secret(uuid, uuid, bytea, bytea) is
  'Store (replace) the encrypted credential of a channel of a rule the caller may write.';
revoke all on function private.save_alert_channel_secret(uuid, uuid, bytea, bytea) from public;
grant execute on function private.save_alert_channel_secret(uuid, uuid, bytea, bytea) to authenticated, service_role;

-- A webhook answering 410 Gone asked us to stop: the channel is disabled, with the reason, until an
-- admin saves it again.
create function private.disable_alert_channel(rule uuid, channel uuid, reason text) returns boolean
language sql volatile set search_path = '' as $$
  with changed as (
    update public.alert_rules r
       set channels = (select jsonb_agg(case when x ->> 'id' = channel::text
                                              then x || jsonb_build_object('disabled', true, 'disabled_reason', reason,
                                                                           'disabled_at', now())
                                              else x end order by i)
                         from jsonb_array_elements(r.channels) with ordinality t(x, i))
     where r.id = rule
    returning 1
  )
  select exists (select 1 from changed)
$$;
comment on function private.disable_alert_channel(uuid, uuid, text) is
  'Mark one channel of a rule disabled (e.g. after a 410 from its endpoint), keeping the reason.';
revoke all on function private.disable_alert_channel(uuid, uuid, text) from public;
