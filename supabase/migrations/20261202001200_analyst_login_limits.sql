-- Analyst logins cannot keep loosened limits.
--
-- Postgres always lets a role `ALTER ROLE current_user SET` its own user-settable parameters (and
-- event triggers do not see ALTER ROLE), so an analyst could lift its statement timeout and read-only
-- default for every later session. Three guards, from strongest to weakest:
-- * Postgres 17 and later: a login event trigger applies the limits to every analyst session as it
--   starts, whatever the role's stored defaults say, and restores those defaults.
-- * Everywhere: a job every minute restores every analyst's stored defaults and ends the sessions of
--   a role it had to repair (they may have started with loosened defaults); the watchdog of
--   20261122002400_analysts.sql cancels statements that outrun the timeout meanwhile. RLS and the
--   absence of write grants, not read-only mode, are what keep writes out.
-- * Temp space: temp_file_limit is a superuser parameter, so a role default set by the platform is
--   one the analyst can neither raise nor reset; temp tables do not count against it, so analysts
--   may not create tables at all (a ddl_command_start event trigger refuses every DDL of theirs).

alter table private.analyst_roles
  add column temp_file_limit_kb integer not null default 1048576
    constraint temp_file_limit_is_between_1mb_and_100gb check (temp_file_limit_kb between 1024 and 104857600);
comment on column private.analyst_roles.temp_file_limit_kb is
  'Temporary file space one session of the analyst may use (sorts, hashes, held cursors), in kB.';

-- ---------------------------------------------------------------- the limits, declared once
create function private.analyst_settings(role_name text)
returns table (name text, setting text)
language sql stable set search_path = '' as $$
  select s.name, s.setting
  from private.analyst_roles a
  cross join lateral (values
    ('statement_timeout', (extract(epoch from a.statement_timeout) * 1000)::bigint::text),
    ('idle_in_transaction_session_timeout', '300000'),
    ('default_transaction_read_only', 'on'),
    ('search_path', 'analytics, extensions'),
    ('temp_file_limit', a.temp_file_limit_kb::text)) as s (name, setting)
  where a.role_name = analyst_settings.role_name
    -- temp_file_limit can only be set by a superuser or a role granted SET on it.
    and (s.name <> 'temp_file_limit' or pg_catalog.has_parameter_privilege('temp_file_limit', 'SET'))
$$;
comment on function private.analyst_settings(text) is
  'The parameters every session of an analyst login runs with: timeouts, read-only, search path, temp space.';
revoke all on function private.analyst_settings(text) from public;

-- ---------------------------------------------------------------- stored defaults
create function private.enforce_analyst_settings(only_role text default null) returns integer
language plpgsql volatile set search_path = '' as $$
declare
  analyst record;
  s record;
  other record;
  repaired integer := 0;
begin
  for analyst in
    select a.role_name,
           (select array_agg(format('%s=%s', x.name, x.setting) order by format('%s=%s', x.name, x.setting))
              from private.analyst_settings(a.role_name) x) as wanted,
           (select array_agg(c order by c) from pg_catalog.pg_db_role_setting d, unnest(d.setconfig) c
             where d.setrole = r.oid and d.setdatabase = 0) as stored,
           exists (select 1 from pg_catalog.pg_db_role_setting d
                    where d.setrole = r.oid and d.setdatabase <> 0) as per_database
      from private.analyst_roles a
      join pg_catalog.pg_roles r on r.rolname = a.role_name
     where only_role is null or a.role_name = only_role
  loop
    continue when analyst.stored is not distinct from analyst.wanted and not analyst.per_database;
    for other in
      select db.datname from pg_catalog.pg_db_role_setting d join pg_catalog.pg_database db on db.oid = d.setdatabase
       where d.setrole = analyst.role_name::regrole
    loop
      execute format('alter role %I in database %I reset all', analyst.role_name, other.datname);
    end loop;
    execute format('alter role %I reset all', analyst.role_name);
    for s in select * from private.analyst_settings(analyst.role_name) loop
      if s.name = 'search_path' then  -- a list, not one quoted name
        execute format('alter role %I set search_path = analytics, extensions', analyst.role_name);
      else
        execute format('alter role %I set %I = %L', analyst.role_name, s.name, s.setting);
      end if;
    end loop;
    -- Sessions opened under the loosened defaults end; reconnecting gets the limits.
    perform pg_catalog.pg_terminate_backend(p.pid) from pg_catalog.pg_stat_activity p
     where p.usename = analyst.role_name and p.pid <> pg_catalog.pg_backend_pid();
    repaired := repaired + 1;
  end loop;
  return repaired;
end
$$;
comment on function private.enforce_analyst_settings(text) is
  'Restore the stored defaults of analyst logins (one, or all) to private.analyst_settings, dropping any '
  'other, and end the sessions of each role repaired; returns how many roles were repaired.';
revoke all on function private.enforce_analyst_settings(text) from public;

insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-analyst-settings', '* * * * *', 'select private.enforce_analyst_settings()',
   'Restore analyst logins'' stored limits (a role may loosen its own) and end sessions opened under loosened ones.');
select private.schedule_periodic_jobs();

-- ---------------------------------------------------------------- new logins
create or replace function private.create_analyst_role(org uuid, timeout interval default interval '60 seconds')
returns table (role_name text, password text)
language plpgsql volatile set search_path = '' as $$
declare
  name text := 'tokentra_analyst_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12);
  secret text := translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/=', '-_');
begin
  if not exists (select 1 from public.organizations o where o.id = org) then
    raise exception 'no organization %', org using errcode = 'P0002';
  end if;
  insert into private.analyst_roles (role_name, org_id, statement_timeout) values (name, org, timeout);
  execute format('create role %I login inherit in role tokentra_analyst password %L connection limit 5', name, secret);
  perform private.enforce_analyst_settings(name);
  return query select name, secret;
end
$$;

-- ---------------------------------------------------------------- every session, as it starts
create function private.enforce_analyst_login() returns event_trigger
language plpgsql volatile security definer set search_path = '' as $$
declare
  s record;
begin
  if not exists (select 1 from private.analyst_roles a where a.role_name = session_user) then
    return;
  end if;
  -- Session-level (is_local false): they outlive this trigger's transaction, whatever the stored
  -- defaults were; temp_file_limit is set with the owner's right to it, so the session cannot undo it.
  for s in select * from private.analyst_settings(session_user) loop
    perform pg_catalog.set_config(s.name, s.setting, false);
  end loop;
  -- Stored defaults loosened to read-write leave this transaction writable: repair them now. Under the
  -- read-only default the repair waits for the minute job (the session itself is limited either way).
  if pg_catalog.current_setting('transaction_read_only') = 'off' then
    begin
      perform private.enforce_analyst_settings(session_user);
    exception when others then
      raise warning 'analyst defaults not restored at login: %', sqlerrm;
    end;
  end if;
end
$$;
comment on function private.enforce_analyst_login() is
  'Login event trigger: every analyst session starts with private.analyst_settings applied, and loosened '
  'stored defaults are restored.';
revoke all on function private.enforce_analyst_login() from public;

create function private.refuse_analyst_ddl() returns event_trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  if exists (select 1 from private.analyst_roles a where a.role_name = session_user) then
    raise exception 'analyst logins run queries only: % is refused', tg_tag using errcode = '42501';
  end if;
end
$$;
comment on function private.refuse_analyst_ddl() is
  'Event trigger: refuse every DDL (temp tables included, whose space temp_file_limit does not bound) '
  'from analyst sessions.';
revoke all on function private.refuse_analyst_ddl() from public;

-- Event triggers need a superuser (or, on Supabase, the privileges supautils grants); where they are
-- refused the minute job and the watchdog remain.
do $$
begin
  begin
    create event trigger tokentra_analyst_ddl on ddl_command_start
      execute function private.refuse_analyst_ddl();
  exception when insufficient_privilege then
    raise notice 'event triggers are not allowed here: analysts'' DDL is not refused';
  end;
  if current_setting('server_version_num')::int >= 170000 then
    begin
      execute 'create event trigger tokentra_analyst_login on login execute function private.enforce_analyst_login()';
    exception when insufficient_privilege then
      raise notice 'event triggers are not allowed here: the minute job restores analyst limits';
    end;
  else
    raise notice 'no login event triggers before Postgres 17: the minute job restores analyst limits';
  end if;
end
$$;

select private.enforce_analyst_settings();
