-- Re-pricing one organization reads only the day partitions that can hold its calls. The SQL function
-- (20261202003100) planned its scan with the bounds as parameters, so every day partition and each of
-- its indexes was opened and locked, 400 partitions where they cover the retention period: setting a
-- price for a week-old organization took thousands of locks. Here the query is built with literal bounds
-- (EXECUTE), so planning prunes: from the organization's first materialized hour (the rollups keep
-- every hour; rows not materialized yet are at or past the watermark), or `since` when later and only
-- priced rows are asked for. The statement is the same set-based one as before.
create or replace function private.reprice_usage_rows(
  org uuid, only_unpriced boolean, price_models text[], since timestamptz)
returns bigint
language plpgsql volatile set search_path = '' set jit = off as $$
declare
  lower_bound timestamptz := '-infinity';
  changed bigint;
begin
  if reprice_usage_rows.org is not null then
    lower_bound := coalesce(
      least((select min(h.bucket) from private.usage_rollup_hourly h where h.org_id = reprice_usage_rows.org),
            (select min(d.bucket) from private.usage_rollup_deltas d where d.org_id = reprice_usage_rows.org),
            (select s.watermark from private.usage_rollup_state s)),
      '-infinity');
  end if;
  execute format($q$
    with todo as materialized (
      select u.id, u.org_id, u.occurred_at, u.provider, u.model, u.input_tokens, u.output_tokens, u.cached_tokens,
             u.cache_write_tokens, u.reasoning_tokens, u.service_tier
        from public.usage_records u
       where u.occurred_at >= %L
         and ($1::uuid is null or u.org_id = $1)
         and (not u.priced
              or (not $2
                  and ($3::text[] is null or u.price_model = any ($3))
                  and ($4::timestamptz is null or u.occurred_at >= $4)))
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
       where u.id = f.id and u.occurred_at = f.occurred_at and u.occurred_at >= %L
         and (u.cost_usd, u.price_id, u.price_model, u.priced)
             is distinct from (f.cost_usd, f.price_id, f.price_model, true)
      returning 1
    )
    select count(*) from changed $q$, lower_bound, lower_bound)
  into changed
  using reprice_usage_rows.org, reprice_usage_rows.only_unpriced, reprice_usage_rows.price_models,
        reprice_usage_rows.since;
  return changed;
end
$$;
