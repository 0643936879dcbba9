-- The lookup first counts its scope (up to 2,001 entries) to choose an exact search or a graph walk. The
-- count filters by the partition key too, which the scope index did not hold, so it read the rows
-- themselves: 2 ms of CPU for a scope that is most of its partition, a quarter of the lookup. With the
-- partition key in the index, an index-only scan answers from a few index pages.
drop index public.semantic_cache_scope_idx;
create index semantic_cache_scope_idx on public.semantic_cache
  (org_id, model, params_hash, embedding_dims, system_prompt_hash, context_hash) include (scope_key);
