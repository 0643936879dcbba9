-- The local development transport for dashboards (server-sent events from the functions) reads
-- realtime.messages by topic and time several times a second; the compat table has only its primary
-- key. On Supabase, Realtime owns realtime.messages (partitioned by day, with its own indexes) and
-- dashboards use the Realtime server, so nothing is added there.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    create index if not exists messages_topic_inserted_at_idx on realtime.messages (topic, inserted_at);
  end if;
end
$$;
