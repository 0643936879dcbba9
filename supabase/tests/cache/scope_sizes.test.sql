-- The semantic cache keeps each scope's entry count (read by the nearest-entry search to choose an exact
-- search or a walk): it must equal the entries after inserts, upserts, deletes, an organization's deletion
-- and a truncate; and the partition computed for a scope key must be the one Postgres puts its rows in.
begin;
select plan(8);

select is((select count(*)::int from (select (random() * 9.2e18 * (case when random() < 0.5 then -1 else 1 end))::bigint k
                                       from generate_series(1, 500)) g
           where not satisfies_hash_partition('public.semantic_cache'::regclass, 128,
                                              right(private.cache_scope_partition(k)::text, 3)::int, k)), 0,
          'the computed partition of 500 random scope keys is the one hash partitioning chooses');

create temporary table sizes_orgs as select gen_random_uuid() id, i from generate_series(1, 2) i;
insert into public.organizations (id, name) select id, 'sizes ' || i from sizes_orgs;

create function tests.sizes_add(p_org uuid, p_model text, p_rows integer, p_dims integer) returns void
language sql set search_path = '' as $$
  insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, expires_at,
                                     scope_key)
  select p_org, p_model, 'p', 'local', array(select random() from generate_series(1, p_dims))::extensions.vector,
         md5(random()::text), now() + interval '1 hour', private.cache_scope_key(p_org, p_model, 'p', '', '')
  from generate_series(1, p_rows)
$$;
create function tests.sizes_match() returns boolean
language sql set search_path = '' as $$
  select not exists (
    (select c.scope_key, c.org_id, c.embedding_dims, count(*) from public.semantic_cache c
     where c.org_id in (select id from pg_temp.sizes_orgs) group by 1, 2, 3
     except select s.scope_key, s.org_id, s.embedding_dims, s.entries from private.semantic_cache_scope_sizes s
     where s.entries > 0)
    union all
    (select s.scope_key, s.org_id, s.embedding_dims, s.entries from private.semantic_cache_scope_sizes s
     where s.entries > 0 and s.org_id in (select id from pg_temp.sizes_orgs)
     except select c.scope_key, c.org_id, c.embedding_dims, count(*) from public.semantic_cache c
     where c.org_id in (select id from pg_temp.sizes_orgs) group by 1, 2, 3))
$$;

-- Several scopes and dimensions, sizes drawn at random, some in one statement and some in several.
select tests.sizes_add(o.id, m, 1 + (random() * 40)::int, d)
from sizes_orgs o, unnest(array['m1', 'm2', 'm3']) m, unnest(array[8, 16]) d, generate_series(1, 2);
select ok(tests.sizes_match(), 'the counts equal the entries after inserts');
select ok((select bool_and(entries > 0) from private.semantic_cache_scope_sizes
           where org_id in (select id from sizes_orgs)), 'every scope inserted has a count');

-- An upsert of an existing entry (the store's path) replaces it: the count does not change; one that
-- changes its dimension moves it.
update public.semantic_cache c set expires_at = now() + interval '2 hours'
where c.org_id = (select id from sizes_orgs where i = 1) and c.model = 'm1';
update public.semantic_cache c set embedding = array(select random() from generate_series(1, 16))::extensions.vector
where c.id in (select id from public.semantic_cache where org_id = (select id from sizes_orgs where i = 2)
               and model = 'm2' and embedding_dims = 8 limit 3);
select ok(tests.sizes_match(), 'the counts equal the entries after updates, one changing dimensions');

delete from public.semantic_cache c
where c.org_id in (select id from sizes_orgs) and c.model in ('m2', 'm3') and random() < 0.5;
select ok(tests.sizes_match(), 'the counts equal the entries after deleting a random half of two models');

delete from public.organizations where id = (select id from sizes_orgs where i = 1);
select ok(tests.sizes_match(), 'the counts equal the entries after an organization is deleted');
select is((select count(*)::int from private.semantic_cache_scope_sizes
           where org_id = (select id from sizes_orgs where i = 1)), 0, 'and its counts are gone');

truncate public.semantic_cache cascade;
select is((select count(*)::int from private.semantic_cache_scope_sizes), 0, 'a truncate forgets every count');

select * from finish();
rollback;
