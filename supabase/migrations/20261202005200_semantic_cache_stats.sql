-- What the semantic cache did, per organization, hour and model: lookups, hits, misses, the guard's
-- rejections, and the tokens and money the hits saved (the cost of the call each hit replaced).

create table public.semantic_cache_stats (
  org_id uuid not null references public.organizations (id) on delete cascade,
  hour timestamptz not null,
  model text not null,
  lookups bigint not null default 0,
  exact_hits bigint not null default 0,
  semantic_hits bigint not null default 0,
  -- Hits in shadow mode (no stored response): what the cache would have answered.
  shadow_hits bigint not null default 0,
  misses bigint not null default 0,
  -- Vector candidates above the threshold that the lexical guard refused.
  guard_rejections bigint not null default 0,
  stores bigint not null default 0,
  saved_input_tokens bigint not null default 0,
  saved_output_tokens bigint not null default 0,
  saved_usd numeric(20, 12) not null default 0,
  -- The same for shadow hits: savings available by storing responses.
  shadow_saved_usd numeric(20, 12) not null default 0,
  primary key (org_id, hour, model),
  constraint hour_is_whole check (hour = date_trunc('hour', hour, 'UTC'))
);
comment on table public.semantic_cache_stats is
  'Semantic cache outcomes and savings per organization, UTC hour and model (written by the lookup functions).';
-- Whoever reads usage reads what the cache saved; only the cache functions write.
select private.create_tenant_policies('public.semantic_cache_stats', 'usage', false);
grant select on public.semantic_cache_stats to authenticated;

-- Add one outcome to the hour's counters.
create function private.count_cache_outcome(p_org_id uuid, p_model text, p_outcome text, p_rejections integer,
                                            p_input_tokens bigint, p_output_tokens bigint, p_cost_usd numeric)
returns void
language sql volatile security definer set search_path = '' as $$
  insert into public.semantic_cache_stats as t
    (org_id, hour, model, lookups, exact_hits, semantic_hits, shadow_hits, misses, guard_rejections, stores,
     saved_input_tokens, saved_output_tokens, saved_usd, shadow_saved_usd)
  select p_org_id, date_trunc('hour', now(), 'UTC'), p_model,
         (p_outcome <> 'store')::int, (p_outcome = 'exact')::int, (p_outcome = 'semantic')::int,
         (p_outcome like 'shadow%')::int, (p_outcome = 'miss')::int, coalesce(p_rejections, 0),
         (p_outcome = 'store')::int,
         case when p_outcome in ('exact', 'semantic') then p_input_tokens else 0 end,
         case when p_outcome in ('exact', 'semantic') then p_output_tokens else 0 end,
         case when p_outcome in ('exact', 'semantic') then p_cost_usd else 0 end,
         case when p_outcome like 'shadow%' then p_cost_usd else 0 end
  on conflict (org_id, hour, model) do update set
    lookups = t.lookups + excluded.lookups, exact_hits = t.exact_hits + excluded.exact_hits,
    semantic_hits = t.semantic_hits + excluded.semantic_hits, shadow_hits = t.shadow_hits + excluded.shadow_hits,
    misses = t.misses + excluded.misses, guard_rejections = t.guard_rejections + excluded.guard_rejections,
    stores = t.stores + excluded.stores, saved_input_tokens = t.saved_input_tokens + excluded.saved_input_tokens,
    saved_output_tokens = t.saved_output_tokens + excluded.saved_output_tokens,
    saved_usd = t.saved_usd + excluded.saved_usd, shadow_saved_usd = t.shadow_saved_usd + excluded.shadow_saved_usd
$$;
comment on function private.count_cache_outcome(uuid, text, text, integer, bigint, bigint, numeric) is
  'Add a lookup outcome (exact, semantic, shadow_*, miss) or a store to the hourly cache counters.';
revoke all on function private.count_cache_outcome(uuid, text, text, integer, bigint, bigint, numeric) from public;

-- Totals for the caller's organizations over a UTC day range, under the caller's RLS (the /costs view).
create function public.cache_savings(p_start_date date, p_end_date date, p_org_id uuid default null)
returns table (lookups bigint, exact_hits bigint, semantic_hits bigint, shadow_hits bigint, misses bigint,
               guard_rejections bigint, stores bigint, hit_rate double precision, saved_input_tokens bigint,
               saved_output_tokens bigint, saved_usd numeric, shadow_saved_usd numeric)
language sql stable security invoker set search_path = '' as $$
  select coalesce(sum(s.lookups), 0)::bigint, coalesce(sum(s.exact_hits), 0)::bigint,
         coalesce(sum(s.semantic_hits), 0)::bigint, coalesce(sum(s.shadow_hits), 0)::bigint,
         coalesce(sum(s.misses), 0)::bigint, coalesce(sum(s.guard_rejections), 0)::bigint,
         coalesce(sum(s.stores), 0)::bigint,
         coalesce(sum(s.exact_hits + s.semantic_hits)::float8 / nullif(sum(s.lookups), 0), 0),
         coalesce(sum(s.saved_input_tokens), 0)::bigint, coalesce(sum(s.saved_output_tokens), 0)::bigint,
         coalesce(sum(s.saved_usd), 0), coalesce(sum(s.shadow_saved_usd), 0)
  from public.semantic_cache_stats s
  where s.hour >= p_start_date::timestamp at time zone 'UTC'
    and s.hour < (p_end_date + 1)::timestamp at time zone 'UTC'
    and (p_org_id is null or s.org_id = p_org_id)
$$;
comment on function public.cache_savings(date, date, uuid) is
  'Semantic cache lookups, hits, misses and savings over UTC days [start, end], for the organizations the caller reads.';
revoke all on function public.cache_savings(date, date, uuid) from public;
grant execute on function public.cache_savings(date, date, uuid) to authenticated, service_role;
