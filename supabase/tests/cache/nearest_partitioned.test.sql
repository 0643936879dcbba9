-- The semantic cache's nearest-entry search over the table partitioned by scope: a scope above 2,000
-- entries walks its partition's HNSW graph, a small one is searched exactly, and neither ever returns
-- another organization's entry (even one whose scope shares the partition), another scope's, or an expired
-- one. An entry's partition key must be its scope's.
begin;
select plan(18);

create function tests.nearest_vec(seed float8) returns extensions.vector
language sql volatile set search_path = '' as $$
  select extensions.l2_normalize(array(select random() - 0.5 + seed * 0 from generate_series(1, 384))::extensions.vector)
$$;

-- Organization A, and B chosen so that its scope (model m, params p) lands in the partition of A's, so
-- only the filter keeps B out of A's walk.
create temporary table nearest_orgs (name text primary key, id uuid not null);
insert into nearest_orgs values ('a', gen_random_uuid());
create temporary table nearest_partition as
select r from generate_series(0, 127) r
where satisfies_hash_partition('public.semantic_cache'::regclass, 128, r,
                               private.cache_scope_key((select id from nearest_orgs where name = 'a'), 'm', 'p', '', ''));
insert into nearest_orgs
select 'b', u from (select gen_random_uuid() u from generate_series(1, 20000)) g
where satisfies_hash_partition('public.semantic_cache'::regclass, 128, (select r from nearest_partition),
                               private.cache_scope_key(u, 'm', 'p', '', ''))
limit 1;
insert into public.organizations (id, name) select id, 'nearest ' || name from nearest_orgs;

-- A: 2,100 entries in one scope (model m, params p), 50 in another model's scope, 1 expired. Loaded
-- before the 384 index exists (built once afterwards, faster than an insert into the graph per row).
drop index public.semantic_cache_embedding_384_idx;
insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, expires_at,
                                   scope_key)
select a, model, 'p', 'local', tests.nearest_vec(i), md5(i::text), now() + interval '1 hour',
       private.cache_scope_key(a, model, 'p', '', '')
from generate_series(1, 2150) i,
     lateral (select (select id from nearest_orgs where name = 'a') a,
                     case when i <= 2100 then 'm' else 'm2' end model) s;
create temporary table nearest_query as
select embedding as q from public.semantic_cache
where org_id = (select id from nearest_orgs where name = 'a') and model = 'm' and prompt_hash = md5('7');
-- B holds the query's exact vector in the same model and parameters; A's other model holds it too;
-- A's expired entry is the query itself.
insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, expires_at,
                                   scope_key)
select org_id, model, 'p', 'local', (select q from nearest_query), prompt_hash, expires_at,
       private.cache_scope_key(org_id, model, 'p', '', '')
from (values ((select id from nearest_orgs where name = 'b'), 'm', 'b-same', now() + interval '1 hour'),
             ((select id from nearest_orgs where name = 'a'), 'm2', 'a-other-model', now() + interval '1 hour'),
             ((select id from nearest_orgs where name = 'a'), 'm', 'a-expired', now() - interval '1 second'))
     v (org_id, model, prompt_hash, expires_at);
-- B also holds 900 entries of its own in that scope, so A's scope is about 70% of the partition.
insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, expires_at,
                                   scope_key)
select b, 'm', 'p', 'local', tests.nearest_vec(i), 'b-' || i, now() + interval '1 hour',
       private.cache_scope_key(b, 'm', 'p', '', '')
from generate_series(1, 900) i, lateral (select (select id from nearest_orgs where name = 'b') b) s;
select is(private.ensure_semantic_cache_index(384), 'semantic_cache_embedding_384_idx created',
          'the 384 index is built again over the partitions');
analyze public.semantic_cache;

select is((select count(distinct tableoid)::int from public.semantic_cache
           where org_id in (select id from nearest_orgs) and model = 'm'), 1,
          'the two organizations'' scopes share a partition');
select throws_ok($$insert into public.semantic_cache (org_id, model, params_hash, embedding_model, prompt_hash, scope_key)
                   values ((select id from nearest_orgs where name = 'a'), 'm', 'p', 'local', 'wrong-key',
                           private.cache_scope_key((select id from nearest_orgs where name = 'a'), 'm', 'other', '', ''))$$,
                 '23514', null, 'an entry whose partition key is not its scope''s is refused');
select throws_ok($$insert into public.semantic_cache (org_id, model, params_hash, embedding_model, prompt_hash)
                   values ((select id from nearest_orgs where name = 'a'), 'm', 'p', 'local', 'no-key')$$,
                 '23502', null, 'an entry without a partition key is refused');

create temporary table nearest_large as
select n.*, c.org_id, c.model, c.prompt_hash, c.expires_at
from private.cache_nearest((select id from nearest_orgs where name = 'a'), 'm', 'p', '', '', (select q from nearest_query),
                           'local', 10, 40) with ordinality n
join public.semantic_cache c on c.id = n.entry_id;

select is((select prompt_hash from nearest_large order by distance limit 1), md5('7'),
          'the large scope''s nearest entry is the query''s own entry');
select ok((select bool_and(org_id = (select id from nearest_orgs where name = 'a')) from nearest_large),
          'the walk never returns the other organization''s entry in the same partition');
select ok((select bool_and(model = 'm') and bool_and(expires_at > now()) from nearest_large),
          'nor another model''s entry, nor an expired one');
select is((select count(*)::int from nearest_large), 10, 'ten candidates come back');
select ok((select bool_and(distance >= prev) from (select distance, lag(distance, 1, 0::float8) over (order by ordinality) prev
                                                    from nearest_large) d),
          'ordered by distance');
select ok((select abs(distance - extensions.cosine_distance(c.embedding, (select q from nearest_query))) < 1e-9
           from nearest_large n join public.semantic_cache c on c.id = n.entry_id order by n.distance desc limit 1),
          'distances are full precision (the halfvec walk is re-ranked)');
-- A pass of the graph meets B's rows too: it is sized so that one pass still keeps the 40 rows of A's
-- scope the walk gathers (about 40 / 0.7 and room for chance), rather than 40 and a second pass.
select cmp_ok(current_setting('hnsw.ef_search')::int, '>=', 58,
              'the pass gathers more than the walk''s 40 rows when the scope is 70% of its partition');
select cmp_ok(current_setting('hnsw.ef_search')::int, '<=', 100, 'but not the whole partition''s share of rows');
-- the large scope walked the HNSW graph of A's partition, and only that one
select is((select count(*)::int from pg_class i join pg_am am on am.oid = i.relam
           where am.amname = 'hnsw' and i.relname like 'semantic_cache_p%' and pg_stat_get_xact_numscans(i.oid) > 0), 1,
          'a scope above 2,000 entries walks one partition''s HNSW index');

-- the same query in the small scope (A's other model, 51 entries): exact, never the graph
create temporary table nearest_small as
select n.*, c.model from private.cache_nearest((select id from nearest_orgs where name = 'a'), 'm2', 'p', '', '',
                                               (select q from nearest_query), 'local', 100, 40) n
join public.semantic_cache c on c.id = n.entry_id;
select is((select count(*)::int from nearest_small), 51, 'a small scope returns every one of its entries when asked');
select ok((select bool_and(model = 'm2') from nearest_small) and (select min(distance) from nearest_small) < 1e-6,
          'only that scope''s entries, its copy of the query first');
select is((select count(*)::int from pg_class i join pg_am am on am.oid = i.relam
           where am.amname = 'hnsw' and i.relname like 'semantic_cache_p%' and pg_stat_get_xact_numscans(i.oid) > 0), 1,
          'the small scope was searched without the graph');

select throws_ok($$select * from private.cache_nearest(gen_random_uuid(), 'm', 'p', '', '', (select q from nearest_query),
                                                       'local', 0, 40)$$, '22023', null,
                 'a candidate count out of range is refused, naming the parameter');

-- partitions are reached only through the table, whose policies apply
select tests.create_user('nearest_user');
select tests.authenticate_as('nearest_user');
select throws_ok($$select count(*) from public.semantic_cache_p000$$, '42501', null,
                 'a signed-in user cannot read a partition directly');

select * from finish();
rollback;
