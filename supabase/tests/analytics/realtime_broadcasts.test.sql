-- Broadcasts reach only their organization's topics: Realtime authorizes a private channel by selecting
-- from realtime.messages as the joining user with realtime.topic() set; these are those selects.
begin;
select plan(13);

insert into public.organizations (id, name) values
  ('00000000-0000-4000-8000-0000000b0c0a', 'broadcast-a'), ('00000000-0000-4000-8000-0000000b0c0b', 'broadcast-b');
select tests.create_user('rt_owner_a'), tests.create_user('rt_viewer_a'), tests.create_user('rt_owner_b');
insert into public.organization_members (org_id, user_id, role) values
  ('00000000-0000-4000-8000-0000000b0c0a', tests.uid('rt_owner_a'), 'owner'),
  ('00000000-0000-4000-8000-0000000b0c0a', tests.uid('rt_viewer_a'), 'viewer'),
  ('00000000-0000-4000-8000-0000000b0c0b', tests.uid('rt_owner_b'), 'owner');

-- What a user receives on a channel: the events of the messages they may select on that topic.
create function pg_temp.received(who text, topic text) returns text[] language plpgsql as $$
declare
  events text[];
begin
  perform tests.authenticate_as(who);
  perform set_config('realtime.topic', topic, true);
  select coalesce(array_agg(m.event order by m.event), '{}') into events from realtime.messages m;
  perform tests.clear_authentication();
  perform set_config('realtime.topic', '', true);
  return events;
end
$$;

-- changes dashboards watch are broadcast by triggers and by the rollup refresh
insert into public.alert_events (org_id, dedup_key, title) values
  ('00000000-0000-4000-8000-0000000b0c0a', 'rt-1', 'Spend spike');
insert into public.recommendations (org_id, category, fingerprint, title) values
  ('00000000-0000-4000-8000-0000000b0c0a', 'model_downgrade', 'rt-fp', 'Use a smaller model');
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, priced)
values ('00000000-0000-4000-8000-0000000b0c0a', now() - interval '30 seconds', 'rt-a', 'openai', 'gpt-4o', 0.25, true),
       ('00000000-0000-4000-8000-0000000b0c0b', now() - interval '30 seconds', 'rt-b', 'openai', 'gpt-4o', 0.5, true);
select is(private.broadcast_usage_minutes(now() - interval '1 minute', now()) >= 2, true,
          'usage per minute is sent to every organization with usage in the window');

-- members receive their organization's topics
select is(pg_temp.received('rt_owner_a', 'org:00000000-0000-4000-8000-0000000b0c0a:alerts'), array['alert.raised'],
          'an owner receives the alert events of their organization');
select is(pg_temp.received('rt_owner_a', 'org:00000000-0000-4000-8000-0000000b0c0a:recommendations'),
          array['recommendation.created'], 'an owner receives new recommendations');
select is(pg_temp.received('rt_viewer_a', 'org:00000000-0000-4000-8000-0000000b0c0a:usage'), array['usage'],
          'a viewer receives usage per minute');
select is((select (m.payload -> 'minutes' -> 0 ->> 'cost_usd')::numeric from realtime.messages m
           where m.topic = 'org:00000000-0000-4000-8000-0000000b0c0a:usage' order by m.inserted_at desc limit 1),
          0.25::numeric, 'the usage message carries the organization''s own figures');

-- and nothing else
select is(pg_temp.received('rt_owner_b', 'org:00000000-0000-4000-8000-0000000b0c0a:alerts'), '{}'::text[],
          'a member of another organization cannot join its alert topic');
select is(pg_temp.received('rt_owner_b', 'org:00000000-0000-4000-8000-0000000b0c0a:usage'), '{}'::text[],
          'nor its usage topic');
select is(pg_temp.received('rt_owner_b', 'org:00000000-0000-4000-8000-0000000b0c0b:usage'), array['usage'],
          'their own usage topic holds only their own message');
select is(pg_temp.received('rt_viewer_a', 'org:00000000-0000-4000-8000-0000000b0c0a:recommendations'), '{}'::text[],
          'a viewer (no recommendations.read) cannot join the recommendations topic');
select is(pg_temp.received('rt_owner_a', 'org:00000000-0000-4000-8000-0000000b0c0a'), '{}'::text[],
          'a topic that is not one of ours authorizes nothing');
select is(pg_temp.received('rt_owner_a', null), '{}'::text[], 'outside a channel check nothing is visible');

-- a change a user makes is broadcast too, though the user may not write to realtime.messages
select tests.authenticate_as('rt_owner_a');
update public.alert_events set status = 'acknowledged' where dedup_key = 'rt-1';
select tests.clear_authentication();
select is(pg_temp.received('rt_owner_a', 'org:00000000-0000-4000-8000-0000000b0c0a:alerts'),
          array['alert.raised', 'alert.updated'], 'acknowledging an alert is broadcast to the organization');

-- users cannot broadcast into an organization's topics themselves
select tests.authenticate_as('rt_owner_b');
select throws_ok($$ insert into realtime.messages (topic, extension, payload, event, private)
                    values ('org:00000000-0000-4000-8000-0000000b0c0a:alerts', 'broadcast', '{}', 'alert.raised', true) $$,
                 '42501', null, 'a user cannot send to a topic');
select tests.clear_authentication();

select * from finish();
rollback;
