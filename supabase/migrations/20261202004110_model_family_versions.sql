-- A family prefix ends at '-', ':', '@', '_' or '/', never at '.': a dot continues a version number, so
-- gpt-5.6-luna is not of the gpt-5 family (20261202004100 accepted the dot and gave such models the
-- priors of another generation).
create or replace function private.model_family(provider_id text, model_id text) returns text
language sql stable parallel safe set search_path = '' as $$
  select f.family from private.model_families f
   where lower(model_family.model_id) like f.family || '%'
     and (f.provider_id is null or f.provider_id = model_family.provider_id)
     and substr(lower(model_family.model_id), length(f.family) + 1, 1) in ('', '-', ':', '@', '_', '/')
   order by length(f.family) desc, f.provider_id is null
   limit 1
$$;
comment on function private.model_family(text, text) is
  'The registry family of a model id (longest matching prefix ending at a separator other than a dot), or null.';
