-- Live usage: the per-second job broadcasts the minutes that received calls since its last run, once
-- per change, to the organization's usage topic only.
begin;
select plan(8);

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000da1a1', 'live-a'), ('00000000-0000-4000-8000-0000000da1b1', 'live-b');
-- start from a known cursor, as if the last run was a minute ago
update private.usage_live_state set claimed_through = now() - interval '1 minute';
delete from private.usage_live_minutes;

-- what ingest writes: the usage row and its exactly-once claim, in one transaction
create function pg_temp.ingest(org uuid, rid text, cost numeric, at timestamptz) returns void language sql as $$
  insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
  values (org, at, rid, 'openai', 'gpt-4o', cost, true);
  insert into private.usage_request_ids (org_id, request_id, occurred_at) values (org, rid, at);
$$;
create function pg_temp.usage_messages(org uuid) returns bigint language sql as $$
  select count(*) from realtime.messages m
  where m.topic = 'org:' || org || ':usage' and m.event = 'usage' and m.payload ->> 'live' = 'true'
$$;

select pg_temp.ingest('00000000-0000-4000-8000-0000000da1a1', 'live-1', 0.25, now() - interval '10 seconds');
select pg_temp.ingest('00000000-0000-4000-8000-0000000da1a1', 'live-2', 0.50, now() - interval '5 seconds');
select is(private.broadcast_live_usage() >= 1, true, 'a minute that received calls is broadcast');
select is(pg_temp.usage_messages('00000000-0000-4000-8000-0000000da1a1'), 1::bigint,
          'one message for the organization');
select is((select sum((x ->> 'cost_usd')::numeric) from realtime.messages m,
                  jsonb_array_elements(m.payload -> 'minutes') x
            where m.topic = 'org:00000000-0000-4000-8000-0000000da1a1:usage' and m.payload ->> 'live' = 'true'),
          0.75::numeric, 'it carries the minute''s exact cost');
select is(pg_temp.usage_messages('00000000-0000-4000-8000-0000000da1b1'), 0::bigint,
          'an organization without new calls gets nothing');

-- a run with nothing new sends nothing again (the overlap re-reads, the totals are unchanged)
select private.broadcast_live_usage();
select is(pg_temp.usage_messages('00000000-0000-4000-8000-0000000da1a1'), 1::bigint,
          'unchanged minutes are not sent twice');

-- a second without new claims (the cursor past them and the overlap) sends nothing, answers 0, and
-- still moves the cursor
update private.usage_live_state set claimed_through = now() + interval '1 minute';
select is(private.broadcast_live_usage(), 0, 'a second without new claims sends nothing');
select is((select claimed_through from private.usage_live_state), now(), 'and the cursor moves to this run');

-- it is scheduled every second (pg_cron where present, else the worker reads the same table)
select is((select schedule from private.periodic_jobs where name = 'tokentra-usage-live'), '1 seconds',
          'the live broadcast runs every second');

select * from finish();
rollback;
