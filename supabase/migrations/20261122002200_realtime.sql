-- Realtime: what dashboards watch is broadcast with realtime.send to private topics, one family per
-- organization: `org:<organization id>:<kind>`. The kind names the permission a reader needs, so a
-- viewer (usage.read) can follow spend but not recommendations:
--   usage            usage.read            usage per minute, sent by each rollup refresh
--   alerts           alerts.read           alert events raised, acknowledged, resolved
--   recommendations  recommendations.read  recommendations created or changing status
--   budgets          budgets.read          budgets created, changed or removed
-- Supabase Realtime authorizes a private channel by running a select on realtime.messages as the
-- joining user with realtime.topic() set to the channel's topic; the policy below answers it.

-- ---------------------------------------------------------------- authorization
-- Whether the current user may read a topic: it must be one of ours and the user must hold the kind's
-- read permission in that organization. Anything else (malformed ids included) is simply false.
create function private.may_read_topic(topic text) returns boolean
language sql stable set search_path = '' as $$
  select coalesce((
    select private.has_permission(m[1]::uuid, m[2] || '.read')
    from regexp_match(topic, '^org:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):'
                             '(usage|alerts|recommendations|budgets)$') m
  ), false)
$$;
comment on function private.may_read_topic(text) is
  'True when the current user may receive broadcasts on topic org:<id>:<usage|alerts|recommendations|budgets>.';
revoke all on function private.may_read_topic(text) from public;
grant execute on function private.may_read_topic(text) to authenticated, service_role;

-- The topic is compared to the row too, so a plain select outside a channel check sees nothing.
create policy "members receive their organizations' broadcasts" on realtime.messages
  for select to authenticated
  using (extension = 'broadcast' and topic = (select realtime.topic())
         and (select private.may_read_topic(realtime.topic())));

-- ---------------------------------------------------------------- sending
create function private.org_topic(org uuid, kind text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select format('org:%s:%s', org, kind)
$$;
comment on function private.org_topic(uuid, text) is 'The broadcast topic of one kind of an organization''s changes.';

-- Usage per minute per organization for [from_at, to_at): one message per organization with its minutes.
create function private.broadcast_usage_minutes(from_at timestamptz, to_at timestamptz) returns integer
language sql volatile set search_path = '' as $$
  with minutes as (
    select u.org_id, date_trunc('minute', u.occurred_at, 'UTC') as minute, count(*) as requests,
           count(*) filter (where u.status <> 'success') as errors, coalesce(sum(u.cost_usd), 0) as cost_usd,
           sum(u.input_tokens) as input_tokens, sum(u.output_tokens) as output_tokens
    from public.usage_records u
    where u.occurred_at >= from_at and u.occurred_at < to_at
    group by 1, 2
  ), sent as (
    select realtime.send(
             jsonb_build_object('from', from_at, 'to', to_at, 'minutes',
               jsonb_agg(jsonb_build_object('minute', m.minute, 'requests', m.requests, 'errors', m.errors,
                                            'cost_usd', m.cost_usd, 'input_tokens', m.input_tokens,
                                            'output_tokens', m.output_tokens) order by m.minute)),
             'usage', private.org_topic(m.org_id, 'usage'), true)
    from minutes m
    group by m.org_id
  )
  select count(*)::integer from sent
$$;
comment on function private.broadcast_usage_minutes(timestamptz, timestamptz) is
  'Broadcast usage per minute in [from_at, to_at) to each organization''s org:<id>:usage topic; returns messages sent.';
revoke all on function private.broadcast_usage_minutes(timestamptz, timestamptz) from public;

-- Row triggers: alert events, recommendations and budgets change a few times a day, not per request.
-- Security definer, as Supabase's own broadcast triggers are: the user acknowledging an alert may not
-- insert into realtime.messages (no insert policy), the trigger sends on the organization's behalf.
create function private.broadcast_alert_event() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform realtime.send(
    jsonb_build_object('id', new.id, 'severity', new.severity, 'title', new.title, 'status', new.status,
                       'rule_id', new.rule_id, 'budget_id', new.budget_id, 'created_at', new.created_at),
    case tg_op when 'INSERT' then 'alert.raised' else 'alert.updated' end,
    private.org_topic(new.org_id, 'alerts'), true);
  return null;
end
$$;
comment on function private.broadcast_alert_event() is 'Trigger: broadcast an alert event to org:<id>:alerts.';

create function private.broadcast_recommendation() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform realtime.send(
    jsonb_build_object('id', new.id, 'category', new.category, 'title', new.title, 'priority', new.priority,
                       'status', new.status, 'estimated_monthly_savings', new.estimated_monthly_savings,
                       'created_at', new.created_at),
    case tg_op when 'INSERT' then 'recommendation.created' else 'recommendation.updated' end,
    private.org_topic(new.org_id, 'recommendations'), true);
  return null;
end
$$;
comment on function private.broadcast_recommendation() is
  'Trigger: broadcast a new or re-statused recommendation to org:<id>:recommendations.';

create function private.broadcast_budget() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
declare
  b public.budgets := case when tg_op = 'DELETE' then old else new end;
begin
  perform realtime.send(
    jsonb_build_object('id', b.id, 'name', b.name, 'amount', b.amount, 'period', b.period,
                       'scope_type', b.scope_type, 'scope_id', b.scope_id, 'enabled', b.enabled,
                       'deleted', tg_op = 'DELETE'),
    'budget.changed', private.org_topic(b.org_id, 'budgets'), true);
  return null;
end
$$;
comment on function private.broadcast_budget() is 'Trigger: broadcast a budget''s creation, change or removal.';

revoke all on function private.broadcast_alert_event(), private.broadcast_recommendation(), private.broadcast_budget()
  from public;

create trigger broadcast_alert_event after insert or update of status on public.alert_events
  for each row execute function private.broadcast_alert_event();
create trigger broadcast_recommendation after insert or update of status on public.recommendations
  for each row execute function private.broadcast_recommendation();
create trigger broadcast_budget after insert or update or delete on public.budgets
  for each row execute function private.broadcast_budget();

-- ---------------------------------------------------------------- postgres_changes
-- Tables a dashboard may watch row by row (Realtime applies their RLS per subscriber). Usage rows are
-- left out on purpose: at thousands a second they are what the per-minute broadcast is for.
do $$
declare
  t text;
begin
  foreach t in array array['alert_events', 'recommendations', 'budgets', 'anomalies'] loop
    if not exists (select 1 from pg_publication_tables
                   where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end
$$;

-- ---------------------------------------------------------------- local retention
-- Supabase's Realtime drops old message partitions itself; the local compat table needs a sweep.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    insert into private.periodic_jobs (name, schedule, command, description) values
      ('tokentra-realtime-messages-cleanup', '23 * * * *',
       'delete from realtime.messages where inserted_at < now() - interval ''3 days''',
       'Drop broadcast messages older than three days (local Realtime compat only).');
    perform private.schedule_periodic_jobs();
  end if;
end
$$;
