-- For every tenant table and every operation: a user of organization A neither sees nor changes
-- organization B's rows, cannot move its own rows to B, a viewer cannot write, anon sees nothing.
begin;
select plan((select count(*)::int * 8 + 2 from tests.tenant_tables()));

create temp table ids (name text primary key, id uuid) on commit drop;
grant select on ids to authenticated, anon;
insert into ids values ('a', gen_random_uuid()), ('b', gen_random_uuid());
insert into public.organizations (id, name) select id, 'org-' || name from ids;
select tests.create_user('iso_owner_a'), tests.create_user('iso_viewer_a'), tests.create_user('iso_owner_b');
insert into public.organization_members (org_id, user_id, role) values
  ((select id from ids where name = 'a'), tests.uid('iso_owner_a'), 'owner'),
  ((select id from ids where name = 'a'), tests.uid('iso_viewer_a'), 'viewer'),
  ((select id from ids where name = 'b'), tests.uid('iso_owner_b'), 'owner');
select tests.seed_org((select id from ids where name = 'a'), 'a');
select tests.seed_org((select id from ids where name = 'b'), 'b');

-- Rows of org in tbl, counted as the test runner (no RLS in the way).
create function pg_temp.count_rows(tbl regclass, org uuid) returns integer
language plpgsql as $$
declare
  n integer;
begin
  execute format('select count(*) from %s where org_id = %L', tbl, org) into n;
  return n;
end
$$;

-- the seed covers every tenant table, so a new table without a seed row fails here
select is_empty($$
  select t::text from tests.tenant_tables() t
  where pg_temp.count_rows(t, (select id from ids where name = 'b')) = 0
$$, 'every tenant table has a seeded row for organization B');

-- Run one statement as a role; return rows affected, or -1 when refused with 42501.
create function pg_temp.affected(who text, stmt text) returns integer
language plpgsql as $$
declare
  n integer;
begin
  if who = 'anon' then perform tests.become_anon(); else perform tests.authenticate_as(who); end if;
  begin
    execute stmt;
    get diagnostics n = row_count;
  exception when insufficient_privilege then
    n := -1;
  end;
  perform tests.clear_authentication();
  return n;
end
$$;

-- Count rows as a role; -1 when the role may not read the table at all.
create function pg_temp.visible(who text, tbl regclass, org uuid) returns integer
language plpgsql as $$
declare
  n integer;
begin
  if who = 'anon' then perform tests.become_anon(); else perform tests.authenticate_as(who); end if;
  begin
    execute format('select count(*) from %s where org_id = %L', tbl, org) into n;
  exception when insufficient_privilege then
    n := -1;
  end;
  perform tests.clear_authentication();
  return n;
end
$$;

-- A statement that re-inserts a copy of one of org's rows with the given org_id (identity and
-- generated columns left out), built as the runner so the copied values are real.
create function pg_temp.copy_insert(tbl regclass, src uuid, dest uuid) returns text
language plpgsql as $$
declare
  cols text;
  row_json jsonb;
begin
  select string_agg(quote_ident(a.attname), ', ' order by a.attnum) into cols
  from pg_attribute a
  where a.attrelid = tbl and a.attnum > 0 and not a.attisdropped and a.attidentity = '' and a.attgenerated = ''
    and a.attname not in ('id');
  execute format('select to_jsonb(t) from %s t where org_id = %L limit 1', tbl, src) into row_json;
  row_json := jsonb_set(row_json, '{org_id}', to_jsonb(dest));
  return format('insert into %s (%s) select %s from jsonb_populate_record(null::%s, %L)',
                tbl, cols, cols, tbl, row_json);
end
$$;

create function pg_temp.check_table(tbl regclass) returns setof text
language plpgsql as $$
declare
  a uuid := (select id from ids where name = 'a');
  b uuid := (select id from ids where name = 'b');
  n integer;
begin
  -- owner of A sees A's row: the policies are not simply closed
  return next ok(pg_temp.visible('iso_owner_a', tbl, a) > 0, tbl || ': owner of A sees A''s rows');
  return next is(pg_temp.visible('iso_owner_a', tbl, b), 0, tbl || ': owner of A sees none of B''s rows');
  n := pg_temp.affected('iso_owner_a', format('update %s set org_id = org_id where org_id = %L', tbl, b));
  return next ok(n in (0, -1), tbl || ': owner of A updates none of B''s rows (' || n || ')');
  n := pg_temp.affected('iso_owner_a', format('delete from %s where org_id = %L', tbl, b));
  return next ok(n in (0, -1), tbl || ': owner of A deletes none of B''s rows (' || n || ')');
  n := pg_temp.affected('iso_owner_a', pg_temp.copy_insert(tbl, a, b));
  return next is(n, -1, tbl || ': owner of A cannot insert rows into B');
  n := pg_temp.affected('iso_owner_a', format('update %s set org_id = %L where org_id = %L', tbl, b, a));
  return next ok(n in (0, -1), tbl || ': owner of A cannot move A''s rows to B (' || n || ')');
  n := pg_temp.affected('iso_viewer_a', format('delete from %s where org_id = %L', tbl, a));
  return next ok(n in (0, -1), tbl || ': a viewer of A deletes nothing (' || n || ')');
  return next is(pg_temp.visible('anon', tbl, a), -1, tbl || ': anon may not read the table');
end
$$;

select pg_temp.check_table(t) from tests.tenant_tables() t;

-- rows of B are all still there after A's attempts
select is_empty($$
  select t::text from tests.tenant_tables() t
  where pg_temp.count_rows(t, (select id from ids where name = 'b')) = 0
$$, 'organization B lost no rows');

select * from finish();
rollback;
