-- Foundation: extensions, schemas, default privileges and the helpers every later file uses.

-- ---------------------------------------------------------------- extensions
-- Supabase keeps extensions in `extensions`; pg_partman in its own schema as its docs advise.
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists vector with schema extensions;
create schema if not exists partman;
create extension if not exists pg_partman with schema partman;

-- pg_cron and timescaledb are detected, not assumed: pg_cron can only live in the database named by
-- cron.database_name, and timescaledb only where it is preloaded (Supabase drops it on Postgres 17).
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and current_setting('cron.database_name', true) = current_database() then
    create extension if not exists pg_cron;
  end if;
  if exists (select 1 from pg_available_extensions where name = 'timescaledb')
     and current_setting('shared_preload_libraries') like '%timescaledb%' then
    create extension if not exists timescaledb with schema extensions;
  end if;
end
$$;

-- ---------------------------------------------------------------- schemas
-- `private` holds internal tables and helpers; the API (PostgREST) never exposes it.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- New objects start with no privileges for API roles; each file grants back what a role needs.
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on functions from public, anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema private revoke all on functions from public;
alter default privileges in schema public grant all on tables to service_role;
alter default privileges in schema public grant all on sequences to service_role;
alter default privileges in schema private grant all on tables to service_role;
alter default privileges in schema private grant all on sequences to service_role;
grant usage on schema partman to service_role;
grant all on all tables in schema partman to service_role;

-- ---------------------------------------------------------------- generic triggers
-- Keeps updated_at true without trusting clients to send it.
create function private.touch_updated_at() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function private.touch_updated_at() is 'Trigger: set updated_at to now() on update.';

-- A row never moves to another organization, whatever the caller's rights in both.
create function private.forbid_org_change() returns trigger
language plpgsql volatile set search_path = '' as $$
begin
  if new.org_id is distinct from old.org_id then
    raise exception 'org_id cannot change' using errcode = '42501';
  end if;
  return new;
end
$$;
comment on function private.forbid_org_change() is 'Trigger: refuse an update that changes org_id.';
