-- A large semantic cache scope that shares its partition gets a graph of its own (a partial HNSW index the
-- worker builds from private.semantic_cache_scope_graph_changes), which its lookups walk; graphs no longer
-- needed or left invalid are dropped; no other index is ever planned for dropping.
begin;
select plan(17);

create function tests.graphs_vec() returns extensions.vector
language sql volatile set search_path = '' as $$
  select extensions.l2_normalize(array(select random() - 0.5 from generate_series(1, 384))::extensions.vector)
$$;

-- Counts the scans of each index in this transaction, so a test can tell which graph a lookup walked.
create function tests.graphs_scans(index_name text) returns bigint
language sql stable set search_path = '' as $$
  select coalesce(pg_catalog.pg_stat_get_xact_numscans(pg_catalog.to_regclass('public.' || index_name)), 0)
$$;

-- A and B: two organizations whose scopes (model m, params p) hash into one partition.
create temporary table graphs_orgs (name text primary key, id uuid not null);
insert into graphs_orgs values ('a', gen_random_uuid());
create temporary table graphs_partition as
select r from generate_series(0, 127) r
where satisfies_hash_partition('public.semantic_cache'::regclass, 128, r,
                               private.cache_scope_key((select id from graphs_orgs where name = 'a'), 'm', 'p', '', ''));
insert into graphs_orgs
select 'b', u from (select gen_random_uuid() u from generate_series(1, 20000)) g
where satisfies_hash_partition('public.semantic_cache'::regclass, 128, (select r from graphs_partition),
                               private.cache_scope_key(u, 'm', 'p', '', ''))
limit 1;
insert into public.organizations (id, name) select id, 'graphs ' || name from graphs_orgs;
create temporary table graphs_scopes as
select o.name, private.cache_scope_key(o.id, 'm', 'p', '', '') scope_key,
       private.cache_scope_graph_name(private.cache_scope_key(o.id, 'm', 'p', '', ''), 384) index_name
from graphs_orgs o;

-- A: 2,400 entries in scope (m, p) and 60 in a small one (m2); B: 2,200 in (m, p). Loaded before the 384
-- index exists (one build afterwards is faster than an insert into the graph per row).
drop index public.semantic_cache_embedding_384_idx;
insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, expires_at,
                                   scope_key)
select o.id, s.model, 'p', 'local', tests.graphs_vec(), o.name || '-' || s.model || '-' || i, now() + interval '1 hour',
       private.cache_scope_key(o.id, s.model, 'p', '', '')
from graphs_orgs o
join (values ('a', 'm', 2400), ('a', 'm2', 60), ('b', 'm', 2200)) s (org, model, n) on s.org = o.name,
     generate_series(1, s.n) i;
select private.ensure_semantic_cache_index(384);
analyze public.semantic_cache;

create temporary table graphs_plan as select * from private.semantic_cache_scope_graph_changes();
select set_eq($$select index_name from graphs_plan where action = 'create'
                and scope_key in (select scope_key from graphs_scopes)$$,
              $$select index_name from graphs_scopes$$,
              'both large scopes sharing the partition are planned a graph of their own');
select is((select count(*)::int from graphs_plan
           where scope_key = private.cache_scope_key((select id from graphs_orgs where name = 'a'), 'm2', 'p', '', '')),
          0, 'a scope of 60 entries is not');
select is((select count(*)::int from graphs_plan where action = 'drop'), 0,
          'nothing is dropped: the table''s own indexes (the scope btree among them) are never planned');
select ok((select statement from graphs_plan where index_name = (select index_name from graphs_scopes where name = 'a'))
          ~ ('^create index concurrently if not exists \S+ on public\.semantic_cache_p\d+ using hnsw .* '
             || 'where embedding_dims = 384 and scope_key = -?\d+$'),
          'the build is a concurrent partial HNSW index on the scope''s partition, for its dimension and key');

-- Before A's graph exists, A's lookup walks the partition's graph.
select ok(not private.cache_scope_has_graph((select scope_key from graphs_scopes where name = 'a'), 384),
          'no graph of its own before it is built');
create temporary table graphs_query as
select embedding q from public.semantic_cache where prompt_hash = 'a-m-7';
create temporary table graphs_before as
select * from private.cache_nearest((select id from graphs_orgs where name = 'a'), 'm', 'p', '', '',
                                    (select q from graphs_query), 'local', 10, 40);
select is((select count(*)::int from graphs_before), 10, 'ten candidates from the partition''s graph');

-- The worker runs the statement outside a transaction; here (inside one) without CONCURRENTLY.
do $$ begin
  execute replace((select statement from graphs_plan where index_name = (select index_name from graphs_scopes where name = 'a')),
                  'concurrently ', '');
end $$;
select ok(private.cache_scope_has_graph((select scope_key from graphs_scopes where name = 'a'), 384),
          'the built graph is found and valid');
select is((select count(*)::int from private.semantic_cache_scope_graph_changes()
           where index_name = (select index_name from graphs_scopes where name = 'a')), 0,
          'a built graph is not planned again');

create temporary table graphs_after as
select n.*, c.org_id, c.model, c.prompt_hash
from private.cache_nearest((select id from graphs_orgs where name = 'a'), 'm', 'p', '', '',
                           (select q from graphs_query), 'local', 10, 40) n
join public.semantic_cache c on c.id = n.entry_id;
select is(tests.graphs_scans((select index_name from graphs_scopes where name = 'a')), 1::bigint,
          'the lookup walked the scope''s own graph');
select is((select prompt_hash from graphs_after order by distance limit 1), 'a-m-7',
          'its nearest entry is the query''s own');
select ok((select count(*) = 10 and bool_and(org_id = (select id from graphs_orgs where name = 'a')) and bool_and(model = 'm')
           from graphs_after), 'ten candidates, all of the scope');
select cmp_ok(current_setting('hnsw.ef_search')::int, '=', 40,
              'the pass is the walk''s 40 rows: the graph holds only the scope''s');

-- Hysteresis: B shrinks to 1,500 entries and keeps its graph, to 900 and loses it; B gone, A is its whole
-- partition and loses its graph too.
do $$ begin
  execute replace((select statement from graphs_plan where index_name = (select index_name from graphs_scopes where name = 'b')),
                  'concurrently ', '');
end $$;
delete from public.semantic_cache
where org_id = (select id from graphs_orgs where name = 'b') and split_part(prompt_hash, '-', 3)::int > 1500;
select is((select count(*)::int from private.semantic_cache_scope_graph_changes()), 0,
          'a graph is kept while its scope stays above 1,000 entries');
delete from public.semantic_cache
where org_id = (select id from graphs_orgs where name = 'b') and split_part(prompt_hash, '-', 3)::int > 900;
select results_eq($$select action, index_name from private.semantic_cache_scope_graph_changes()$$,
                  $$select 'drop', index_name from graphs_scopes where name = 'b'$$,
                  'and dropped when it falls to 1,000 or fewer');
delete from public.semantic_cache where org_id = (select id from graphs_orgs where name = 'b');
select set_eq($$select action, index_name from private.semantic_cache_scope_graph_changes()$$,
              $$select 'drop', index_name from graphs_scopes$$,
              'a scope that becomes 95% of its partition no longer needs one');

-- An invalid graph (a concurrent build that failed) is dropped, then built again.
insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, expires_at,
                                   scope_key)
select (select id from graphs_orgs where name = 'b'), 'm', 'p', 'local', tests.graphs_vec(), 'b-again-' || i,
       now() + interval '1 hour', (select scope_key from graphs_scopes where name = 'b')
from generate_series(1, 2200) i;
update pg_index set indisvalid = false
where indexrelid = ('public.' || (select index_name from graphs_scopes where name = 'a'))::regclass;
select ok(not private.cache_scope_has_graph((select scope_key from graphs_scopes where name = 'a'), 384),
          'an invalid graph is not used');
select results_eq($$select action, index_name from private.semantic_cache_scope_graph_changes()
                    where index_name = (select index_name from graphs_scopes where name = 'a')$$,
                  $$values ('drop', (select index_name from graphs_scopes where name = 'a')),
                           ('create', (select index_name from graphs_scopes where name = 'a'))$$,
                  'an invalid graph is dropped, then built again');

select * from finish();
rollback;
