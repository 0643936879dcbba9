-- The per-second live usage broadcast returns early in a second without new claims. pg_cron starts each
-- run in a new backend, whose cold catalog cache made planning the totals statement over every daily
-- usage partition cost about 30 ms of CPU per run: 3-4% of a core on an idle database. Same messages
-- otherwise.

create or replace function private.broadcast_live_usage(overlap interval default interval '5 seconds') returns integer
language plpgsql volatile set search_path = '' as $$
declare
  since timestamptz;
  upto constant timestamptz := now();
  sent integer := 0;
begin
  -- One run at a time; a run that finds the state locked leaves the work to the one holding it.
  select s.claimed_through into since from private.usage_live_state s for update skip locked;
  if not found then
    return 0;
  end if;
  -- claimed_at is the ingest transaction's start: a batch that began before the last run but
  -- committed after it is found again thanks to the overlap; unchanged totals are not re-sent.
  -- A second without new claims skips the totals, found on the claims' claimed_at index: planning that
  -- statement touches every daily usage partition, from a cold cache in pg_cron's new backend each run.
  if exists (select 1 from private.usage_request_ids c
              where c.claimed_at > since - overlap and c.occurred_at >= upto - interval '5 minutes') then
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
  end if;
  update private.usage_live_state set claimed_through = upto;
  delete from private.usage_live_minutes m where m.minute < upto - interval '10 minutes';
  return sent;
end
$$;
