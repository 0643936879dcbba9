-- Semantic cache lookup and store: exact first, then similarity within the scope, behind the lexical
-- guard; TTLs per task type; opt-ins; recorded outcomes.
begin;
select plan(29);

-- a unit-length 384-dimensional vector pointing mostly along axis `a`, tilted by `tilt` towards axis `b`
create function tests.cache_vec(a integer, b integer, tilt float8) returns extensions.vector
language sql immutable set search_path = '' as $$
  select extensions.l2_normalize(('[' || string_agg(case when i = a then '1' when i = b then tilt::text else '0' end,
                                                     ',' order by i) || ']')::extensions.vector)
  from generate_series(1, 384) i
$$;

insert into public.organizations (id, name) values
  ('00000000-0000-0000-0000-00000000ca01', 'cache on'), ('00000000-0000-0000-0000-00000000ca02', 'cache off'),
  ('00000000-0000-0000-0000-00000000ca03', 'cache shadow');
insert into public.semantic_cache_settings (org_id, enabled, store_responses) values
  ('00000000-0000-0000-0000-00000000ca01', true, true), ('00000000-0000-0000-0000-00000000ca03', true, false);

create function tests.cache_put(org text, prompt text, vec extensions.vector, guard text default 'g',
                                task text default 'faq', model text default 'gpt-4o') returns text
language sql volatile set search_path = '' as $$
  select outcome from private.cache_store(org::uuid, 'openai', model, 'params', 'sys', '', encode(extensions.digest(prompt, 'sha256'), 'hex'),
                                          vec, 'local', guard, '{merit+}', '{capital, france}', 'bag-' || prompt,
                                          'seq-' || prompt, task,
                                          '{"answer": "cached"}', 100, 50, 0.002)
$$;
create function tests.cache_get(org text, prompt text, vec extensions.vector, guard text default 'g',
                                bag text default null, seq text default null, model text default 'gpt-4o',
                                params text default 'params', sys text default 'sys',
                                polarity text[] default '{merit+}', tokens text[] default '{capital, france}')
returns table (outcome text, similarity float8, response jsonb, rejected integer)
language sql volatile set search_path = '' as $$
  select outcome, similarity, response, guard_rejections
  from private.cache_lookup(org::uuid, model, params, sys, '', encode(extensions.digest(prompt, 'sha256'), 'hex'), vec, 'local',
                            guard, polarity, tokens, coalesce(bag, 'bag-' || prompt), coalesce(seq, 'seq-' || prompt), 0.9)
$$;

-- one partial HNSW index per dimension in use: 384 and 1536 exist, others are made on demand, idempotently
select is(private.ensure_semantic_cache_index(384), 'semantic_cache_embedding_384_idx exists', 'the 384 index exists');
select is(private.ensure_semantic_cache_index(3072), 'semantic_cache_embedding_3072_idx created',
          'a 3,072-dimension index is created (over halfvec)');
select throws_ok($$select private.ensure_semantic_cache_index(5000)$$, '22023', null,
                 'a dimension HNSW cannot index is refused with its reason');

-- storing with the cache on keeps the entry and its response
select is(tests.cache_put('00000000-0000-0000-0000-00000000ca01', 'capital of france', tests.cache_vec(1, 2, 0)),
          'stored', 'an organization with the cache on stores entries');
-- with the cache off nothing is stored, not even the embedding
select is(tests.cache_put('00000000-0000-0000-0000-00000000ca02', 'capital of france', tests.cache_vec(1, 2, 0)),
          'disabled', 'an organization with the cache off stores nothing');
select is((select count(*)::int from public.semantic_cache where org_id = '00000000-0000-0000-0000-00000000ca02'), 0,
          'no row exists for the organization with the cache off');
-- a task type whose TTL is 0 is never cached
select is(tests.cache_put('00000000-0000-0000-0000-00000000ca01', 'a poem', tests.cache_vec(3, 4, 0), 'g', 'poetry'),
          'not_cacheable', 'creative task types are not cached');
-- the TTL follows the task type: a greeting lives a minute
select is((select expires_at - now() from private.cache_store('00000000-0000-0000-0000-00000000ca01'::uuid, 'openai', 'gpt-4o',
           'params', 'sys', '', repeat('c', 64), tests.cache_vec(5, 6, 0), 'local', 'g', '{}', '{}', 'b', 's', 'greeting',
           '{}', 1, 1, 0)), interval '60 seconds', 'greetings expire after 60 seconds');

-- the same prompt hits exactly
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of france', tests.cache_vec(1, 2, 0))),
          'exact', 'the same prompt is an exact hit');
-- a paraphrase with a close embedding and the same guard features hits by similarity, with the response
select results_eq($$select outcome, response from tests.cache_get('00000000-0000-0000-0000-00000000ca01',
                    'tell me france''s capital', tests.cache_vec(1, 2, 0.2))$$,
                  $$values ('semantic'::text, '{"answer": "cached"}'::jsonb)$$, 'a close paraphrase is a semantic hit');
-- the similarity reported is the cosine similarity
select ok((select abs(similarity - 1 / sqrt(1.04)) < 1e-5 from tests.cache_get('00000000-0000-0000-0000-00000000ca01',
          'tell me france''s capital', tests.cache_vec(1, 2, 0.2))), 'the hit reports its cosine similarity');
-- below the threshold is a miss
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of spain', tests.cache_vec(1, 2, 0.8))),
          'miss', 'a distant prompt misses');
-- a different number/date/entity (guard key) is refused even when the vectors are nearly equal
select results_eq($$select outcome, rejected from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of france in 1850',
                    tests.cache_vec(1, 2, 0.05), 'other-guard')$$,
                  $$values ('miss'::text, 1)$$, 'the lexical guard refuses a near vector whose features differ');
-- the same words in another order (swapped roles) are refused
select results_eq($$select outcome, rejected from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'france of capital',
                    tests.cache_vec(1, 2, 0.01), 'g', 'bag-capital of france', 'seq-swapped')$$,
                  $$values ('miss'::text, 1)$$, 'the same bag of words in another order is refused');
-- an opposite polarity word (drawbacks for benefits) is refused
select results_eq($$select outcome, rejected from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'drawbacks of france',
                    tests.cache_vec(1, 2, 0.05), 'g', null, null, 'gpt-4o', 'params', 'sys', '{merit-}')$$,
                  $$values ('miss'::text, 1)$$, 'an opposite polarity class is refused');
-- one content word swapped for another, the rest equal (another entity), is refused
select results_eq($$select outcome, rejected from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of spain',
                    tests.cache_vec(1, 2, 0.05), 'g', null, null, 'gpt-4o', 'params', 'sys', '{}', '{capital, spain}')$$,
                  $$values ('miss'::text, 1)$$, 'a substituted content word is refused');
-- another model, other parameters or another system prompt never share entries
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of france', tests.cache_vec(1, 2, 0), 'g', null, null, 'gpt-4o-mini')),
          'miss', 'another model does not hit');
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of france', tests.cache_vec(1, 2, 0), 'g', null, null, 'gpt-4o', 'temperature=1')),
          'miss', 'other answer-changing parameters do not hit');
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of france', tests.cache_vec(1, 2, 0), 'g', null, null, 'gpt-4o', 'params', 'other-sys')),
          'miss', 'another system prompt does not hit');
-- never across organizations: the shadow org looking up the same prompt finds nothing
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca03', 'capital of france', tests.cache_vec(1, 2, 0))),
          'miss', 'another organization never hits this one''s entries');
-- a disabled organization's lookups say so
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca02', 'capital of france', tests.cache_vec(1, 2, 0))),
          'disabled', 'lookups of an organization with the cache off are disabled');

-- shadow mode: the embedding is kept, the response is not, and a hit carries no response
select is(tests.cache_put('00000000-0000-0000-0000-00000000ca03', 'capital of france', tests.cache_vec(1, 2, 0)),
          'shadow', 'without the responses opt-in the entry is a shadow');
select results_eq($$select outcome, response from tests.cache_get('00000000-0000-0000-0000-00000000ca03', 'capital of france', tests.cache_vec(1, 2, 0))$$,
                  $$values ('shadow_exact'::text, null::jsonb)$$, 'a shadow hit returns no response');

-- a reported wrong hit raises that entry's own threshold, and the same neighbour no longer hits
select ok(private.cache_report_wrong_hit('00000000-0000-0000-0000-00000000ca01',
            (select id from public.semantic_cache where org_id = '00000000-0000-0000-0000-00000000ca01' and task_type = 'faq'),
            1 / sqrt(1.04)) > 1 / sqrt(1.04), 'a wrong hit raises the entry threshold');
select is((select outcome from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'tell me france''s capital', tests.cache_vec(1, 2, 0.2))),
          'miss', 'the entry no longer hits at the similarity reported wrong');

-- hits, misses and savings are recorded per hour
select results_eq($$select exact_hits, semantic_hits, misses, guard_rejections, saved_usd
                    from public.cache_savings(current_date, current_date, '00000000-0000-0000-0000-00000000ca01')$$,
                  $$values (1::bigint, 2::bigint, 9::bigint, 4::bigint, 0.006::numeric)$$,
                  'hits, misses, guard rejections and money saved are counted');

-- each real hit is counted on its entry, apart from the entry row
select is((select sum(hits)::int from private.semantic_cache_entry_hits where org_id = '00000000-0000-0000-0000-00000000ca01'), 3,
          'hits are counted per entry');

-- a scope of more than 2,000 entries is searched through the HNSW index, and still finds the neighbour
insert into public.semantic_cache (org_id, model, params_hash, system_prompt_hash, embedding_model, embedding, prompt_hash,
                                   response, expires_at, guard_key, scope_key)
select '00000000-0000-0000-0000-00000000ca01', 'gpt-4o', 'params', 'sys', 'local',
       extensions.l2_normalize(array(select random() - 0.5 + i * 0 from generate_series(1, 384))::extensions.vector),
       md5(i::text) || md5('x' || i), '{"answer": "random"}', now() + interval '1 hour', 'g',
       private.cache_scope_key('00000000-0000-0000-0000-00000000ca01', 'gpt-4o', 'params', 'sys', '')
from generate_series(1, 2100) i;
select is((select response ->> 'answer' from tests.cache_get('00000000-0000-0000-0000-00000000ca01', 'capital of france',
           tests.cache_vec(1, 2, 0.1), 'g', null, null, 'gpt-4o', 'params', 'sys', '{merit+}', '{capital, france}')),
          'cached', 'a large scope finds the nearest entry through the HNSW index');

-- turning the cache off removes the organization's entries
update public.semantic_cache_settings set enabled = false where org_id = '00000000-0000-0000-0000-00000000ca01';
select is((select count(*)::int from public.semantic_cache where org_id = '00000000-0000-0000-0000-00000000ca01'), 0,
          'turning the cache off deletes the organization''s embeddings');

select * from finish();
rollback;
