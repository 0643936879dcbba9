-- Semantic cache: responses keyed by prompt embedding, looked up by cosine distance (HNSW).
-- Only hashes of prompts are kept unless the organization opts in (organizations.store_prompts).

create table public.semantic_cache (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  model text not null,
  embedding_model text not null,
  embedding extensions.vector(1536) not null,
  prompt_hash text not null,
  prompt_text text,
  response jsonb not null,
  input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  cost_usd numeric(20, 12) not null default 0,
  hits bigint not null default 0,
  expires_at timestamptz,
  created_at timestamptz not null default now(),
  last_hit_at timestamptz
);
create index semantic_cache_embedding_idx on public.semantic_cache
  using hnsw (embedding extensions.vector_cosine_ops);
create index semantic_cache_org_hash_idx on public.semantic_cache (org_id, prompt_hash);
select private.create_tenant_policies('public.semantic_cache', 'cache');
grant select, insert, update, delete on public.semantic_cache to authenticated;

-- Refuse prompt text for organizations that did not opt in, whoever writes the row.
create function private.keep_prompt_only_on_opt_in() returns trigger
language plpgsql volatile security definer set search_path = '' as $$
begin
  if new.prompt_text is not null
     and not (select o.store_prompts from public.organizations o where o.id = new.org_id) then
    new.prompt_text := null;
  end if;
  return new;
end
$$;
comment on function private.keep_prompt_only_on_opt_in() is
  'Trigger: drop prompt_text unless the organization opted in to storing prompts.';
create trigger keep_prompt_only_on_opt_in before insert or update on public.semantic_cache
  for each row execute function private.keep_prompt_only_on_opt_in();
