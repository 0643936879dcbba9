-- An analyst login's stored limits are restored whatever the role set for itself, temp space is
-- bounded by a parameter it cannot change, and the guards are installed where the platform allows.
begin;
select plan(8);

insert into public.organizations (id, name) values ('00000000-0000-0000-0000-00000000a111', 'analyst limits');
create temp table analyst as
select role_name from private.create_analyst_role('00000000-0000-0000-0000-00000000a111', interval '30 seconds');

create function pg_temp.stored(role text) returns text[] language sql as $$
  select array_agg(c order by c) from pg_db_role_setting d, unnest(d.setconfig) c
   where d.setrole = role::regrole and d.setdatabase = 0
$$;

-- a new analyst starts with its limits stored, temp space included
select is(pg_temp.stored((select role_name from analyst)),
          array['default_transaction_read_only=on', 'idle_in_transaction_session_timeout=300000',
                'search_path=analytics, extensions', 'statement_timeout=30000', 'temp_file_limit=1048576'],
          'the limits are the role''s stored defaults');
-- the role loosens its own defaults, as Postgres lets it, here and in another database
do $$
begin
  execute format('alter role %I set statement_timeout = 0', (select role_name from analyst));
  execute format('alter role %I set default_transaction_read_only = off', (select role_name from analyst));
  execute format('alter role %I set work_mem = %L', (select role_name from analyst), '1GB');
  execute format('alter role %I in database template1 set statement_timeout = 0', (select role_name from analyst));
end
$$;
select is(private.enforce_analyst_settings(), 1, 'the loosened role is repaired');
select is(pg_temp.stored((select role_name from analyst)),
          array['default_transaction_read_only=on', 'idle_in_transaction_session_timeout=300000',
                'search_path=analytics, extensions', 'statement_timeout=30000', 'temp_file_limit=1048576'],
          'its stored defaults are the limits again, and nothing else');
select is_empty($$ select 1 from pg_db_role_setting where setrole = (select role_name from analyst)::regrole
                     and setdatabase <> 0 $$, 'settings it stored for other databases are gone');
select is(private.enforce_analyst_settings(), 0, 'a role within its limits is left alone');
-- the repair runs every minute (pg_cron, or the worker where pg_cron is absent)
select is((select schedule from private.periodic_jobs where name = 'tokentra-analyst-settings'), '* * * * *',
          'the repair is a periodic job of every minute');
-- DDL of analysts is refused; on Postgres 17 every analyst session starts with the limits
select is((select evtenabled from pg_event_trigger where evtname = 'tokentra_analyst_ddl'), 'O',
          'the DDL guard is installed');
select is((select count(*)::int from pg_event_trigger where evtname = 'tokentra_analyst_login' and evtevent = 'login'),
          case when current_setting('server_version_num')::int >= 170000 then 1 else 0 end,
          'the login guard is installed where login event triggers exist');

select * from finish();
rollback;
