-- Organizations' own prices: a fine-tune, a private deployment or a negotiated rate that genai-prices
-- cannot know. They are price sets in private.model_prices like any other (effective-dated, never
-- updated, priced by the same private.price_cost), under a provider id of their own,
-- `org:<org id>` (any provider) or `org:<org id>:<provider>`, so no other organization's resolution can
-- reach them. A call resolves to its organization's price first: by the name as sent, then by its
-- canonical model (a price set for gpt-4o covers gpt-4o-2024-08-06), a provider-specific entry before an
-- any-provider one; from the set's effective_from on, and to genai-prices before it. Setting a price
-- re-prices the organization's stored calls it covers, as `prices sync` does.

-- ---------------------------------------------------------------- storage
alter table private.model_prices
  add column org_id uuid references public.organizations (id) on delete cascade,
  add column note text,
  add constraint organization_prices_live_under_their_own_provider_id check (
    (org_id is null and provider_id not like 'org:%')
    or (org_id is not null and (provider_id = 'org:' || org_id::text or provider_id like 'org:' || org_id::text || ':%'))),
  add constraint note_is_short check (length(note) <= 500);
comment on column private.model_prices.org_id is
  'The organization that set this price for itself (null: genai-prices or a hand-entered catalogue price).';
comment on column private.model_prices.note is 'Why an organization set this price (free text).';
create index model_prices_org_idx on private.model_prices (org_id, model_id) where org_id is not null;

-- Prices stay public knowledge; an organization's own prices are its members' business.
drop policy "signed-in users read prices" on private.model_prices;
create policy "users read catalogue prices and their organizations' own" on private.model_prices
  for select to authenticated
  using (org_id is null or org_id = any ((select private.org_ids_with('usage.read'))::uuid[]));
drop policy "analysts read prices" on private.model_prices;
create policy "analysts read catalogue prices and their organization's own" on private.model_prices
  for select to tokentra_analyst
  using (org_id is null or org_id = any ((select private.analyst_org_ids())::uuid[]));

create or replace view public.model_prices with (security_invoker = true) as
  select p.id as price_id, p.provider_id, p.model_id, m.name as model_name, p.service_tier, p.effective_from,
         p.daily_from, p.daily_until, p.above_input_tokens, p.input_mtok, p.cache_read_mtok, p.cache_write_mtok,
         p.output_mtok, p.output_reasoning_mtok, p.requests_kcount, p.prices, p.source, p.org_id, p.note
    from private.model_prices p
    left join private.price_models m on m.provider_id = p.provider_id and m.model_id = p.model_id;
comment on view public.model_prices is
  'Every price TokenTRA knows, with its history (read-only): genai-prices'' and your organizations'' own (org_id).';

create or replace view analytics.model_prices with (security_invoker = true) as
  select id as price_id, provider_id, model_id, service_tier, effective_from, daily_from, daily_until,
         above_input_tokens, input_mtok, cache_read_mtok, cache_write_mtok, output_mtok, output_reasoning_mtok,
         requests_kcount, org_id
  from private.model_prices;

-- Admins and billing set their organization's prices; owners do everything.
insert into private.role_permissions (role, permission)
values ('owner', 'prices.write'), ('admin', 'prices.write'), ('billing', 'prices.write');

-- ---------------------------------------------------------------- resolution
-- The canonical model as the catalogue alone decides it (genai-prices, else the normalised name): what
-- an organization's price may be set for, besides the name as sent. Definer: the catalogue's match rules
-- are not readable by users, though what they decide is public knowledge.
create function private.catalogue_canonical_model(provider text, model text) returns text
language sql stable parallel safe security definer set search_path = '' as $$
  select private.canonical_model_of(
           (select r.provider_id || '/' || r.model_id
              from private.resolve_price(catalogue_canonical_model.provider, catalogue_canonical_model.model) r),
           catalogue_canonical_model.model)
$$;
comment on function private.catalogue_canonical_model(text, text) is
  'Canonical model of a (provider, model) pair from genai-prices alone (no organization''s own prices).';

-- The organization's own price entry for a call, if it has one: (provider id, model id) in
-- private.model_prices. Called once per distinct (provider, model) of a batch, never per row.
create function private.resolve_org_price(org uuid, provider text, model text)
returns table (provider_id text, model_id text)
language sql stable parallel safe rows 1 set search_path = '' as $$
  with sent as (
    select lower(btrim(resolve_org_price.model)) as name,
           lower(btrim(resolve_org_price.provider)) as provider,
           private.catalogue_canonical_model(resolve_org_price.provider, resolve_org_price.model) as canonical
  )
  select p.provider_id, p.model_id
    from sent s
    join private.model_prices p
      on p.org_id = resolve_org_price.org
     and p.model_id in (s.name, s.canonical)
     and p.provider_id in ('org:' || resolve_org_price.org::text, 'org:' || resolve_org_price.org::text || ':' || s.provider)
   order by p.model_id = s.name desc, p.provider_id <> 'org:' || resolve_org_price.org::text desc
   limit 1
$$;
comment on function private.resolve_org_price(uuid, text, text) is
  'The organization''s own price entry (provider_id, model_id) for a call sent as (provider, model): by name, '
  'then by canonical model; provider-specific before any-provider. No row when it has none.';

-- The cost of a call with the organization's prices first: its own price where one is in effect at
-- `at`, else genai-prices'. What ingest and re-pricing both use.
create function private.org_usage_cost(
  org uuid, provider text, model text, at timestamptz, input_tokens bigint, output_tokens bigint,
  cached_tokens bigint, cache_write_tokens bigint, reasoning_tokens bigint, service_tier text default null)
returns table (price_id bigint, price_model text, cost_usd numeric)
language sql stable parallel safe rows 1 set search_path = '' as $$
  select x.price_id, x.price_model, x.cost_usd from (
    (select c.price_id, c.price_model, c.cost_usd, 1 as rank
       from private.resolve_org_price(org_usage_cost.org, org_usage_cost.provider, org_usage_cost.model) o
      cross join lateral private.price_cost(o.provider_id, o.model_id, false, org_usage_cost.at,
                                            org_usage_cost.input_tokens, org_usage_cost.output_tokens,
                                            org_usage_cost.cached_tokens, org_usage_cost.cache_write_tokens,
                                            org_usage_cost.reasoning_tokens, org_usage_cost.service_tier) c)
    union all
    (select c.price_id, c.price_model, c.cost_usd, 2
       from private.usage_cost(org_usage_cost.provider, org_usage_cost.model, org_usage_cost.at,
                               org_usage_cost.input_tokens, org_usage_cost.output_tokens, org_usage_cost.cached_tokens,
                               org_usage_cost.cache_write_tokens, org_usage_cost.reasoning_tokens,
                               org_usage_cost.service_tier) c)
  ) x
  order by x.rank
  limit 1
$$;
comment on function private.org_usage_cost(uuid, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) is
  'Cost in USD of one call of an organization: its own price in effect at `at`, else genai-prices'' (usage_cost).';

-- The canonical model learns about organizations' prices: a name only the organization prices is
-- grouped under the name its price was set for.
create or replace function private.canonical_model(provider text, model text, org uuid default null) returns text
language sql stable parallel safe set search_path = '' as $$
  select case
           when canonical_model.org is null
             then private.catalogue_canonical_model(canonical_model.provider, canonical_model.model)
           else coalesce(
             (select lower(o.model_id)
                from private.resolve_org_price(canonical_model.org, canonical_model.provider, canonical_model.model) o),
             private.catalogue_canonical_model(canonical_model.provider, canonical_model.model))
         end
$$;
comment on function private.canonical_model(text, text, uuid) is
  'The canonical model of a (provider, model) pair as a client of org sends it: the name the organization''s own '
  'price was set for, else the model id genai-prices resolves it to, else the normalized name. The one grouping '
  'key of reports, detectors, routing and reconciliation.';

-- Budgets count unpriced calls at the dearest catalogue price: an organization's own prices (which
-- only it may see, and which could be anything) stay out of everyone else's conservative estimate.
create or replace function private.conservative_mtok(provider text)
returns table (input_mtok numeric, output_mtok numeric)
language sql stable security definer rows 1 set search_path = '' as $$
  with p as (
    select (select pp.provider_id from private.price_provider(lower(btrim(conservative_mtok.provider))) pp) as id
  )
  select coalesce(
           (select max(m.input_mtok) from private.model_prices m, p
             where m.provider_id = p.id and m.service_tier = '' and m.org_id is null),
           (select max(m.input_mtok) from private.model_prices m where m.service_tier = '' and m.org_id is null), 150),
         coalesce(
           (select max(m.output_mtok) from private.model_prices m, p
             where m.provider_id = p.id and m.service_tier = '' and m.org_id is null),
           (select max(m.output_mtok) from private.model_prices m where m.service_tier = '' and m.org_id is null), 600)
$$;

-- ---------------------------------------------------------------- re-pricing
-- As before (set-based, names resolved once per distinct name, rows whose price is unchanged left
-- alone), with each organization's own prices first.
create or replace function private.reprice_usage_rows(
  org uuid, only_unpriced boolean, price_models text[], since timestamptz)
returns bigint
language sql volatile set search_path = '' set jit = off as $$
  with todo as materialized (
    select u.id, u.org_id, u.occurred_at, u.provider, u.model, u.input_tokens, u.output_tokens, u.cached_tokens,
           u.cache_write_tokens, u.reasoning_tokens, u.service_tier
      from public.usage_records u
     where (reprice_usage_rows.org is null or u.org_id = reprice_usage_rows.org)
       and (not u.priced
            or (not reprice_usage_rows.only_unpriced
                and (reprice_usage_rows.price_models is null or u.price_model = any (reprice_usage_rows.price_models))
                and (reprice_usage_rows.since is null or u.occurred_at >= reprice_usage_rows.since)))
  ), names as materialized (  -- else the planner folds it into the join and resolves every row
    select n.org_id, n.provider, n.model, r.provider_id, r.model_id, r.direct, o.provider_id as org_provider_id,
           o.model_id as org_model_id
      from (select distinct w.org_id, w.provider, w.model from todo w) n
      left join lateral private.resolve_price(n.provider, n.model) r on true
      left join lateral private.resolve_org_price(n.org_id, n.provider, n.model) o on true
     where r.model_id is not null or o.model_id is not null
  ), fresh as (
    select w.id, w.occurred_at, c.price_id, c.price_model, round(c.cost_usd, 12) as cost_usd
      from todo w
      join names n on n.org_id = w.org_id and n.provider = w.provider and n.model = w.model
     cross join lateral (
       select x.* from (
         (select q.*, 1 as rank
            from private.price_cost(n.org_provider_id, n.org_model_id, false, w.occurred_at, w.input_tokens,
                                    w.output_tokens, w.cached_tokens, w.cache_write_tokens, w.reasoning_tokens,
                                    w.service_tier) q
           where n.org_model_id is not null)
         union all
         (select q.*, 2
            from private.price_cost(n.provider_id, n.model_id, n.direct, w.occurred_at, w.input_tokens,
                                    w.output_tokens, w.cached_tokens, w.cache_write_tokens, w.reasoning_tokens,
                                    w.service_tier) q
           where n.model_id is not null)
       ) x order by x.rank limit 1) c
  ), changed as (
    update public.usage_records u
       set cost_usd = f.cost_usd, price_id = f.price_id, price_model = f.price_model, priced = true
      from fresh f
     where u.id = f.id and u.occurred_at = f.occurred_at
       and (u.cost_usd, u.price_id, u.price_model, u.priced)
           is distinct from (f.cost_usd, f.price_id, f.price_model, true)
    returning 1
  )
  select count(*) from changed
$$;

-- ---------------------------------------------------------------- setting a price
-- One complete price set (every unit the call can carry; null = that unit is billed at the input or
-- output price, as genai-prices does) for a model of one organization, from effective_from on (default:
-- all of history, so a model that was unpriced becomes priced everywhere). A later set replaces an
-- earlier one from its own effective_from; sets are never changed. Calls it covers are re-priced now.
-- Definer: model_prices is not writable by users; the caller must hold prices.write in the organization
-- (the service role and operators, who have no auth.uid(), may set any).
create function public.set_model_price(
  org uuid, model text, input_mtok numeric, output_mtok numeric, provider text default null,
  effective_from timestamptz default null, cache_read_mtok numeric default null,
  cache_write_mtok numeric default null, output_reasoning_mtok numeric default null,
  requests_kcount numeric default null, note text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' set jit = off as $$
declare
  name text := lower(btrim(set_model_price.model));
  pid text := 'org:' || set_model_price.org::text
              || coalesce(':' || nullif(lower(btrim(set_model_price.provider)), ''), '');
  eff timestamptz := coalesce(set_model_price.effective_from, '-infinity');
  new_id bigint;
  repriced bigint;
begin
  if (select auth.uid()) is not null and not private.has_permission(set_model_price.org, 'prices.write') then
    raise exception 'you may not set prices for this organization' using errcode = '42501';
  end if;
  if not exists (select 1 from public.organizations o where o.id = set_model_price.org) then
    raise exception 'org: no such organization' using errcode = '22023';
  end if;
  if name is null or name = '' or length(name) > 200 then
    raise exception 'model: a name of 1 to 200 characters is required' using errcode = '22023';
  end if;
  if input_mtok is null or output_mtok is null then
    raise exception 'input_mtok, output_mtok: both prices are required (USD per million tokens)' using errcode = '22023';
  end if;
  if least(input_mtok, output_mtok, coalesce(cache_read_mtok, 0), coalesce(cache_write_mtok, 0),
           coalesce(output_reasoning_mtok, 0), coalesce(requests_kcount, 0)) < 0 then
    raise exception 'prices must not be negative' using errcode = '22023';
  end if;
  if greatest(input_mtok, output_mtok, coalesce(cache_read_mtok, 0), coalesce(cache_write_mtok, 0),
              coalesce(output_reasoning_mtok, 0), coalesce(requests_kcount, 0)) > 100000 then
    raise exception 'prices above $100,000 per million tokens (or thousand requests) are not plausible'
      using errcode = '22023';
  end if;
  if effective_from > now() + interval '1 year' then
    raise exception 'effective_from: at most a year ahead' using errcode = '22023';
  end if;
  insert into private.model_prices (provider_id, model_id, effective_from, input_mtok, cache_read_mtok,
                                    cache_write_mtok, output_mtok, output_reasoning_mtok, requests_kcount, prices,
                                    source, org_id, note)
  values (pid, name, eff, input_mtok, cache_read_mtok, cache_write_mtok, output_mtok, output_reasoning_mtok,
          requests_kcount,
          jsonb_strip_nulls(jsonb_build_object(
            'input_mtok', input_mtok::text, 'output_mtok', output_mtok::text,
            'cache_read_mtok', cache_read_mtok::text, 'cache_write_mtok', cache_write_mtok::text,
            'output_reasoning_mtok', output_reasoning_mtok::text, 'requests_kcount', requests_kcount::text)),
          'organization', set_model_price.org, nullif(btrim(set_model_price.note), ''))
  on conflict on constraint one_price_per_model_tier_instant_window_and_threshold do nothing
  returning id into new_id;
  if new_id is null then
    raise exception 'a price for % from % is already set; set a new one from a later instant', name,
      coalesce(set_model_price.effective_from::text, 'the beginning') using errcode = '23505';
  end if;
  -- Every stored call of the organization from the set's instant on is a candidate: names the price
  -- now covers move to it; the rest are left as they are (reprice touches only changed rows).
  repriced := private.reprice_usage_rows(set_model_price.org, false, null, nullif(eff, '-infinity'));
  return jsonb_build_object(
    'price_id', new_id, 'org_id', set_model_price.org, 'provider_id', pid, 'model_id', name,
    'provider', nullif(lower(btrim(set_model_price.provider)), ''),
    'effective_from', case when eff = '-infinity' then null else eff end,
    'input_mtok', input_mtok, 'output_mtok', output_mtok, 'cache_read_mtok', cache_read_mtok,
    'cache_write_mtok', cache_write_mtok, 'output_reasoning_mtok', output_reasoning_mtok,
    'requests_kcount', requests_kcount, 'note', nullif(btrim(set_model_price.note), ''), 'repriced', repriced);
end
$$;
comment on function public.set_model_price(uuid, text, numeric, numeric, text, timestamptz, numeric, numeric, numeric,
                                           numeric, text) is
  'Set an organization''s own price for a model (USD per million tokens), from effective_from on (default: all '
  'history; optionally for one provider), and re-price the stored calls it covers. Needs prices.write.';

-- ---------------------------------------------------------------- what a model resolves to
-- For `tokentra prices show` and GET /prices/resolve: the canonical model, where the price comes from
-- and the price in effect at `at`, with the organization's own sets for it. Definer: the catalogue's
-- match rules are not readable by users; a signed-in caller must read the organization's usage.
create function public.resolve_model_price(model text, provider text default null, org uuid default null,
                                           at timestamptz default now())
returns jsonb
language plpgsql stable security definer set search_path = '' as $$
declare
  genai record;
  own record;
  cost record;
  result jsonb;
begin
  if org is not null and (select auth.uid()) is not null and not private.has_permission(org, 'usage.read') then
    raise exception 'you may not read this organization''s prices' using errcode = '42501';
  end if;
  if model is null or btrim(model) = '' then
    raise exception 'model: a name is required' using errcode = '22023';
  end if;
  select r.provider_id, r.model_id, r.direct into genai
    from private.resolve_price(coalesce(provider, ''), model) r;
  select o.provider_id, o.model_id into own from private.resolve_org_price(org, coalesce(provider, ''), model) o
   where org is not null;
  select c.* into cost
    from private.org_usage_cost(org, coalesce(provider, ''), model, at, 1000000, 1000000, 0, 0, 0) c;
  select jsonb_build_object(
    'model', model, 'provider', provider, 'org_id', org, 'at', at,
    'canonical_model', private.canonical_model(coalesce(provider, ''), model, org),
    'source', case when cost.price_model like 'org:%' then 'organization'
                   when cost.price_model is not null then 'genai-prices' end,
    'genai_prices_model', case when genai.model_id is not null then genai.provider_id || '/' || genai.model_id end,
    'organization_price_model', case when own.model_id is not null then own.provider_id || '/' || own.model_id end,
    'price', (select to_jsonb(p) - 'prices' - 'recorded_at'
                from private.model_prices p where p.id = cost.price_id),
    'cost_of_1m_input_and_1m_output_tokens', cost.cost_usd,
    'organization_prices', coalesce((
      select jsonb_agg(jsonb_build_object(
               'price_id', p.id, 'provider_id', p.provider_id, 'model_id', p.model_id,
               'effective_from', case when p.effective_from = '-infinity' then null else p.effective_from end,
               'input_mtok', p.input_mtok, 'output_mtok', p.output_mtok, 'cache_read_mtok', p.cache_read_mtok,
               'cache_write_mtok', p.cache_write_mtok, 'note', p.note) order by p.effective_from)
        from private.model_prices p
       where org is not null and p.org_id = org and own.model_id is not null and p.provider_id = own.provider_id
         and p.model_id = own.model_id), '[]'::jsonb))
  into result;
  return result;
end
$$;
comment on function public.resolve_model_price(text, text, uuid, timestamptz) is
  'What a model name resolves to (canonical model, genai-prices model, the organization''s own price) and the '
  'price in effect at `at`; source is organization, genai-prices or null (unpriced).';

-- ---------------------------------------------------------------- grants
revoke all on function private.catalogue_canonical_model(text, text), private.resolve_org_price(uuid, text, text),
  private.org_usage_cost(uuid, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text),
  public.set_model_price(uuid, text, numeric, numeric, text, timestamptz, numeric, numeric, numeric, numeric, text),
  public.resolve_model_price(text, text, uuid, timestamptz) from public;
grant execute on function private.catalogue_canonical_model(text, text) to authenticated, tokentra_analyst, service_role;
-- With an organization it reads that organization's own prices: the service's key, not users'.
revoke execute on function private.canonical_model(text, text, uuid) from authenticated, tokentra_analyst;
grant execute on function private.resolve_org_price(uuid, text, text),
  private.org_usage_cost(uuid, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text)
  to service_role;
grant execute on function
  public.set_model_price(uuid, text, numeric, numeric, text, timestamptz, numeric, numeric, numeric, numeric, text),
  public.resolve_model_price(text, text, uuid, timestamptz) to authenticated, service_role;
