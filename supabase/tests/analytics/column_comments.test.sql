-- Every column a user can read about usage is documented in the database: each column of each view in
-- the analytics schema, and of public.usage_records (members read it directly). A view or column added
-- later without a comment fails here.
begin;
select plan(3);

-- the views and the table the test covers exist (a rename would otherwise empty the check)
select cmp_ok((select count(*)::int from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                where n.nspname = 'analytics' and c.relkind in ('v', 'm')), '>=', 6,
              'the analytics schema holds its documented views');
-- every readable column has a comment
select is_empty(
  $$ select n.nspname || '.' || c.relname || '.' || a.attname
       from pg_catalog.pg_class c
       join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where ((n.nspname = 'analytics' and c.relkind in ('v', 'm', 'r', 'p'))
             or (n.nspname = 'public' and c.relname = 'usage_records'))
        and coalesce(btrim(pg_catalog.col_description(c.oid, a.attnum)), '') = ''
      order by 1 $$,
  'every column of the analytics views and of usage_records has a comment');
-- and every such relation has one too
select is_empty(
  $$ select n.nspname || '.' || c.relname
       from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where ((n.nspname = 'analytics' and c.relkind in ('v', 'm', 'r', 'p'))
             or (n.nspname = 'public' and c.relname = 'usage_records'))
        and coalesce(btrim(pg_catalog.obj_description(c.oid, 'pg_class')), '') = '' $$,
  'every analytics view and usage_records has a comment');

select * from finish();
rollback;
