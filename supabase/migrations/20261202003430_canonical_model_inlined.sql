-- The canonical model is computed for every usage row written (a generated column), so its two
-- functions must cost what their expressions cost. With a SET clause they could not be inlined and each
-- call paid for entering a function and saving and restoring the setting: measured on 100,000 rows,
-- 17 us a priced row and 210 us an unpriced one (the nested normaliser paid it again), which a
-- 1,000-event ingest batch would have paid in full. Without the SET clause the planner inlines them into
-- the insert, as it does the per-event pricing functions (see 20261122000500); every name in them is
-- schema-qualified, so the caller's search_path cannot change what they call. Same results, so stored
-- values stay valid.
-- String functions where they do (the last path segment is split_part(..., -1)), and the date patterns
-- anchored on the name's last 11 or 9 characters, where a snapshot date sits (-2024-08-06, -20240806,
-- @20240806), instead of a pattern tried at every position. One expression, no FROM, not strict: only
-- such a body is inlined (the segment is recomputed per branch; that costs less than a function call).
create or replace function private.normalize_model_name(model text) returns text
language sql immutable parallel safe as $$
  select case
           when pg_catalog.split_part(pg_catalog.lower(pg_catalog.btrim(model)), '/', -1) like '%-latest'
             then pg_catalog.left(pg_catalog.split_part(pg_catalog.lower(pg_catalog.btrim(model)), '/', -1), -7)
           when pg_catalog.right(pg_catalog.btrim(model), 11)
                ~ '^[-@](19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
             then pg_catalog.left(pg_catalog.split_part(pg_catalog.lower(pg_catalog.btrim(model)), '/', -1), -11)
           when pg_catalog.right(pg_catalog.btrim(model), 9)
                ~ '^[-@](19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$'
             then pg_catalog.left(pg_catalog.split_part(pg_catalog.lower(pg_catalog.btrim(model)), '/', -1), -9)
           else pg_catalog.split_part(pg_catalog.lower(pg_catalog.btrim(model)), '/', -1)
         end
$$;

create or replace function private.canonical_model_of(price_model text, model text) returns text
language sql immutable parallel safe as $$
  select case
           when price_model is null then private.normalize_model_name(model)
           when price_model like 'org:%' then pg_catalog.lower(pg_catalog.substr(price_model,
                                                                                 pg_catalog.strpos(price_model, '/') + 1))
           -- genai-prices ids of gateway providers carry the vendor (openrouter's openai/gpt-4o)
           else pg_catalog.lower(pg_catalog.split_part(price_model, '/', -1))
         end
$$;
