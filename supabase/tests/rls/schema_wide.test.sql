-- Schema-wide guarantees: RLS on every table the API could reach, security_invoker views, pinned
-- search_path on security-definer functions, no grants for anon, no BYPASSRLS for app roles.
begin;
select plan(7);

-- every table in public, private and realtime has row level security (partitions are checked below)
select is_empty($$
  select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in ('public', 'private', 'realtime', 'analytics') and c.relkind in ('r', 'p')
    and not c.relispartition and not c.relrowsecurity
$$, 'every table has RLS enabled');

-- partitions are reached only through their parent: no API role holds a privilege on one
select is_empty($$
  select distinct c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  cross join (values ('anon'), ('authenticated')) r(role)
  where n.nspname = 'public' and c.relispartition
    and has_table_privilege(r.role, c.oid, 'select,insert,update,delete')
$$, 'no API role can touch a partition directly');

-- every view the API exposes runs with the caller's rights
select is_empty($$
  select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in ('public', 'analytics') and c.relkind in ('v', 'm')
    and not coalesce(c.reloptions @> array['security_invoker=true'], false)
$$, 'every exposed view is security_invoker');

-- no security-definer function of ours leaves search_path mutable
select is_empty($$
  select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname in ('public', 'private', 'auth', 'realtime', 'analytics') and p.prosecdef
    and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
    and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')
$$, 'every security-definer function pins search_path');

-- anon holds no table privilege in our schemas
select is_empty($$
  select table_schema || '.' || table_name || ':' || privilege_type
  from information_schema.role_table_grants
  where grantee = 'anon' and table_schema in ('public', 'private', 'analytics')
$$, 'anon has no grants');

-- neither anon nor authenticated bypasses RLS or owns a table
select is_empty($$
  select rolname from pg_roles where rolname in ('anon', 'authenticated') and (rolbypassrls or rolsuper)
$$, 'application roles do not bypass RLS');
select is_empty($$
  select c.oid::regclass::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in ('public', 'private') and pg_get_userbyid(c.relowner) in ('anon', 'authenticated')
$$, 'application roles own no table');

select * from finish();
rollback;
