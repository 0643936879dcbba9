-- Live usage: dashboards should see spend move within a couple of seconds of an ingest, but the rollup
-- refresh (and its broadcast) runs once a minute, and ingest must not do more work in its transaction.
-- A separate job, every second, finds which (organization, minute) pairs received calls since its last
-- run from the exactly-once claims (indexed by claimed_at), sums just those minutes from usage_records
-- (indexed by organization and time) and broadcasts the ones whose totals changed, in the same message
-- shape as the refresh's. Only the last five minutes are followed live, as the refresh does.

create table private.usage_live_state (
  singleton boolean primary key default true constraint one_row check (singleton),
  claimed_through timestamptz not null default now()
);
comment on table private.usage_live_state is 'Up to when the live usage broadcast has looked at ingest claims.';
alter table private.usage_live_state enable row level security;
insert into private.usage_live_state default values;

create table private.usage_live_minutes (
  org_id uuid not null,
  minute timestamptz not null,
  requests bigint not null,
  cost_usd numeric not null,
  sent_at timestamptz not null default now(),
  primary key (org_id, minute)
);
comment on table private.usage_live_minutes is
  'The last totals broadcast live per organization and minute, so an unchanged minute is not sent again.';
alter table private.usage_live_minutes enable row level security;

create function private.broadcast_live_usage(overlap interval default interval '5 seconds') returns integer
language plpgsql volatile set search_path = '' as $$
declare
  since timestamptz;
  upto constant timestamptz := now();
  sent integer;
begin
  -- One run at a time; a run that finds the state locked leaves the work to the one holding it.
  select s.claimed_through into since from private.usage_live_state s for update skip locked;
  if not found then
    return 0;
  end if;
  -- claimed_at is the ingest transaction's start: a batch that began before the last run but
  -- committed after it is found again thanks to the overlap; unchanged totals are not re-sent.
  with touched as (
    select distinct c.org_id, date_trunc('minute', c.occurred_at, 'UTC') as minute
    from private.usage_request_ids c
    where c.claimed_at > since - overlap and c.occurred_at >= upto - interval '5 minutes'
  ), totals as (
    select t.org_id, t.minute, count(*) as requests, count(*) filter (where u.status <> 'success') as errors,
           coalesce(sum(u.cost_usd), 0) as cost_usd, sum(u.input_tokens) as input_tokens,
           sum(u.output_tokens) as output_tokens
    from touched t
    join public.usage_records u
      on u.org_id = t.org_id and u.occurred_at >= t.minute and u.occurred_at < t.minute + interval '1 minute'
    group by t.org_id, t.minute
  ), changed as (
    insert into private.usage_live_minutes as m (org_id, minute, requests, cost_usd)
    select t.org_id, t.minute, t.requests, t.cost_usd from totals t
    on conflict (org_id, minute) do update
      set requests = excluded.requests, cost_usd = excluded.cost_usd, sent_at = now()
      where (m.requests, m.cost_usd) is distinct from (excluded.requests, excluded.cost_usd)
    returning m.org_id, m.minute
  ), messages as (
    select realtime.send(
             jsonb_build_object('from', min(t.minute), 'to', max(t.minute) + interval '1 minute', 'live', true,
               'minutes', jsonb_agg(jsonb_build_object('minute', t.minute, 'requests', t.requests, 'errors', t.errors,
                                                       'cost_usd', t.cost_usd, 'input_tokens', t.input_tokens,
                                                       'output_tokens', t.output_tokens) order by t.minute)),
             'usage', private.org_topic(t.org_id, 'usage'), true)
    from totals t join changed c on c.org_id = t.org_id and c.minute = t.minute
    group by t.org_id
  )
  select count(*)::integer into sent from messages;
  update private.usage_live_state set claimed_through = upto;
  delete from private.usage_live_minutes m where m.minute < upto - interval '10 minutes';
  return sent;
end
$$;
comment on function private.broadcast_live_usage(interval) is
  'Broadcast, to each organization''s org:<id>:usage topic, the per-minute totals of the last five minutes '
  'that changed since the last run (found through ingest claims); returns messages sent.';
revoke all on function private.broadcast_live_usage(interval) from public;

-- Every second: pg_cron has sub-minute schedules since 1.5; without pg_cron the worker runs it.
insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-usage-live', '1 seconds', 'select private.broadcast_live_usage()',
   'Broadcast changed per-minute usage within a second of ingest (dashboards follow spend live).');
select private.schedule_periodic_jobs();
