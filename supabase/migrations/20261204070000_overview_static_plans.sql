-- The dashboard overview's sums as static statements with cached plans, reading only the days it shows.
-- The overview asks the same two questions on every load (the daily sums of this month and of as many days
-- of the last, the month's top end users); built as dynamic SQL
-- they were parsed and planned on every call, over the raw table's day partitions included, which cost
-- more than reading the few thousand rollup rows they sum. Here each is a fixed statement per case
-- (one organization, or every organization the caller reads), planned once per connection and kept
-- (plan_cache_mode = force_generic_plan): the raw tail's partitions are pruned when the plan starts,
-- from the watermark, instead of while planning. The days of last month after the comparison period were
-- read and summed for nothing: early in a month they were most of the rows. The Timescale path still
-- reads its views as before.

create or replace function private.usage_overview_sums(start_at timestamptz, month_start timestamptz, end_at timestamptz,
                                                       only_org uuid default null)
returns table (grouped_by text, bucket timestamptz, key text, requests bigint, errors bigint, cost_usd numeric)
language plpgsql stable set search_path = '' set plan_cache_mode = force_generic_plan as $$
declare
  wm constant timestamptz := (select s.watermark from private.usage_rollup_state s);
  -- The comparison period: as many days from start_at as the current period has from month_start.
  previous_end constant timestamptz := least(start_at + (end_at - month_start), month_start);
begin
  if private.rollups_are_continuous_aggregates() then
    return query execute format($q$
      select case grouping(bucket, provider, team, feature, api_key_id)
               when 15 then 'day' when 23 then 'provider' when 27 then 'team' when 29 then 'feature' else 'api_key_id'
             end,
             bucket, coalesce(provider, team, feature, api_key_id::text),
             case when grouping(bucket) = 0 then sum(requests) else sum(requests) filter (where bucket >= $12) end::bigint,
             case when grouping(bucket) = 0 then sum(errors) else sum(errors) filter (where bucket >= $12) end::bigint,
             case when grouping(bucket) = 0 then sum(cost_usd) else sum(cost_usd) filter (where bucket >= $12) end
      from (%s) s
      group by grouping sets ((bucket), (provider), (team), (feature), (api_key_id))
      having case when grouping(bucket) = 0 then sum(requests) else sum(requests) filter (where bucket >= $12) end > 0
      $q$,
      private.usage_sources_sql('day', case when only_org is null then '' else 'and org_id = $3' end, false))
    using start_at, end_at, only_org, null::text, null::text, null::text, null::text, null::text, null::uuid,
          null::text, wm, month_start;
    return;
  end if;
  -- Two statements rather than `only_org is null or org_id = only_org`, which a kept plan could not
  -- answer from the (org_id, bucket) indexes.
  if only_org is not null then
    return query
      select case grouping(s.bucket, s.provider, s.team, s.feature, s.api_key_id)
               when 15 then 'day' when 23 then 'provider' when 27 then 'team' when 29 then 'feature' else 'api_key_id'
             end,
             s.bucket, coalesce(s.provider, s.team, s.feature, s.api_key_id::text),
             case when grouping(s.bucket) = 0 then sum(s.requests)
                  else sum(s.requests) filter (where s.bucket >= month_start) end::bigint,
             case when grouping(s.bucket) = 0 then sum(s.errors)
                  else sum(s.errors) filter (where s.bucket >= month_start) end::bigint,
             case when grouping(s.bucket) = 0 then sum(s.cost_usd)
                  else sum(s.cost_usd) filter (where s.bucket >= month_start) end
      from (
        select r.bucket, r.provider, r.team, r.feature, r.api_key_id, r.requests, r.errors, r.cost_usd
        from private.usage_rollup_daily r
        where r.org_id = only_org and r.bucket >= month_start and r.bucket < end_at
        union all
        select r.bucket, r.provider, r.team, r.feature, r.api_key_id, r.requests, r.errors, r.cost_usd
        from private.usage_rollup_daily r
        where r.org_id = only_org and r.bucket >= start_at and r.bucket < previous_end
        union all
        select date_trunc('day', d.bucket, 'UTC'), d.provider, d.team, d.feature, d.api_key_id, d.requests, d.errors,
               d.cost_usd
        from private.usage_rollup_deltas d
        where d.org_id = only_org and d.bucket >= start_at and d.bucket < end_at
          and (d.bucket >= month_start or d.bucket < previous_end)
        union all
        select date_trunc('day', u.occurred_at, 'UTC'), u.provider, u.team, u.feature, u.api_key_id, 1,
               (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.org_id = only_org and u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and (u.occurred_at >= month_start or u.occurred_at < previous_end)
      ) s
      group by grouping sets ((s.bucket), (s.provider), (s.team), (s.feature), (s.api_key_id))
      having case when grouping(s.bucket) = 0 then sum(s.requests)
                  else sum(s.requests) filter (where s.bucket >= month_start) end > 0;
  else
    return query
      select case grouping(s.bucket, s.provider, s.team, s.feature, s.api_key_id)
               when 15 then 'day' when 23 then 'provider' when 27 then 'team' when 29 then 'feature' else 'api_key_id'
             end,
             s.bucket, coalesce(s.provider, s.team, s.feature, s.api_key_id::text),
             case when grouping(s.bucket) = 0 then sum(s.requests)
                  else sum(s.requests) filter (where s.bucket >= month_start) end::bigint,
             case when grouping(s.bucket) = 0 then sum(s.errors)
                  else sum(s.errors) filter (where s.bucket >= month_start) end::bigint,
             case when grouping(s.bucket) = 0 then sum(s.cost_usd)
                  else sum(s.cost_usd) filter (where s.bucket >= month_start) end
      from (
        select r.bucket, r.provider, r.team, r.feature, r.api_key_id, r.requests, r.errors, r.cost_usd
        from private.usage_rollup_daily r
        where r.bucket >= month_start and r.bucket < end_at
        union all
        select r.bucket, r.provider, r.team, r.feature, r.api_key_id, r.requests, r.errors, r.cost_usd
        from private.usage_rollup_daily r
        where r.bucket >= start_at and r.bucket < previous_end
        union all
        select date_trunc('day', d.bucket, 'UTC'), d.provider, d.team, d.feature, d.api_key_id, d.requests, d.errors,
               d.cost_usd
        from private.usage_rollup_deltas d
        where d.bucket >= start_at and d.bucket < end_at
          and (d.bucket >= month_start or d.bucket < previous_end)
        union all
        select date_trunc('day', u.occurred_at, 'UTC'), u.provider, u.team, u.feature, u.api_key_id, 1,
               (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and (u.occurred_at >= month_start or u.occurred_at < previous_end)
      ) s
      group by grouping sets ((s.bucket), (s.provider), (s.team), (s.feature), (s.api_key_id))
      having case when grouping(s.bucket) = 0 then sum(s.requests)
                  else sum(s.requests) filter (where s.bucket >= month_start) end > 0;
  end if;
end
$$;
comment on function private.usage_overview_sums(timestamptz, timestamptz, timestamptz, uuid) is
  'Requests, errors and cost per day over [month_start, end_at) and over as many days from start_at (the '
  'comparison period; the days between are not read), and per provider, team, feature and API key from '
  'month_start on: the sums of the dashboard overview, in one pass, with a plan kept per connection.';

-- The same for the top end users: one fixed statement per source table (the monthly rollup for whole
-- calendar months, else the daily one) and case, plans kept.
create index if not exists end_user_rollup_monthly_top_idx
  on private.end_user_rollup_monthly (org_id, bucket, cost_usd desc, end_user_id);

create or replace function private.end_user_summary(start_at timestamptz, end_at timestamptz,
                                                    only_org uuid default null, top integer default 10)
returns table (end_user_id text, requests bigint, errors bigint, cost_usd numeric)
language plpgsql stable set search_path = '' set plan_cache_mode = force_generic_plan as $$
declare
  wm constant timestamptz := (select s.watermark from private.usage_rollup_state s);
  months constant boolean := start_at = date_trunc('month', start_at, 'UTC')
                             and end_at = date_trunc('month', end_at, 'UTC');
begin
  if start_at <> date_trunc('day', start_at, 'UTC') or end_at <> date_trunc('day', end_at, 'UTC') then
    raise exception 'start and end must fall on whole UTC days' using errcode = '22023';
  end if;
  if private.rollups_are_continuous_aggregates() then
    return query execute format($q$
      select end_user_id, sum(requests)::bigint, sum(errors)::bigint, sum(cost_usd)
      from analytics.%I where bucket >= $1 and bucket < $2 %s
      group by end_user_id
      having sum(requests) > 0
      order by sum(cost_usd) desc, end_user_id
      limit $4 $q$,
      case when months then 'end_user_monthly' else 'end_user_daily' end,
      case when only_org is null then '' else 'and org_id = $3' end)
    using start_at, end_at, only_org, top;
    return;
  end if;
  if only_org is not null and start_at + interval '1 month' = end_at and months then
    -- One organization's calendar month, the overview's question: one rollup row per user, so the top
    -- users are among the top `top` rows plus one row per user the pending deltas or the raw tail touch
    -- (read from the index in cost order); only those candidates are summed, not every user of the month.
    return query
      with touched as materialized (
        select d.end_user_id, d.requests, d.errors, d.cost_usd
        from private.end_user_rollup_deltas d
        where d.org_id = only_org and d.bucket >= start_at and d.bucket < end_at
        union all
        select u.end_user_id, 1, (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.org_id = only_org and u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and u.end_user_id is not null
      ), leaders as (
        select r.end_user_id, r.requests, r.errors, r.cost_usd
        from private.end_user_rollup_monthly r
        where r.org_id = only_org and r.bucket = start_at
        order by r.cost_usd desc, r.end_user_id
        limit top + (select count(distinct t.end_user_id) from touched t)
      ), candidates as (
        select l.end_user_id from leaders l union select t.end_user_id from touched t
      )
      select s.end_user_id, sum(s.requests)::bigint, sum(s.errors)::bigint, sum(s.cost_usd)
      from (
        select r.end_user_id, r.requests, r.errors, r.cost_usd
        from private.end_user_rollup_monthly r
        where r.org_id = only_org and r.bucket = start_at and r.end_user_id in (select c.end_user_id from candidates c)
        union all
        select t.end_user_id, t.requests, t.errors, t.cost_usd from touched t
      ) s
      group by s.end_user_id
      having sum(s.requests) > 0
      order by sum(s.cost_usd) desc, s.end_user_id
      limit top;
  elsif months and only_org is not null then
    return query
      select s.end_user_id, sum(s.requests)::bigint, sum(s.errors)::bigint, sum(s.cost_usd)
      from (
        select r.end_user_id, r.requests, r.errors, r.cost_usd
        from private.end_user_rollup_monthly r
        where r.org_id = only_org and r.bucket >= start_at and r.bucket < end_at
        union all
        select d.end_user_id, d.requests, d.errors, d.cost_usd
        from private.end_user_rollup_deltas d
        where d.org_id = only_org and d.bucket >= start_at and d.bucket < end_at
        union all
        select u.end_user_id, 1, (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.org_id = only_org and u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and u.end_user_id is not null
      ) s
      group by s.end_user_id
      having sum(s.requests) > 0
      order by sum(s.cost_usd) desc, s.end_user_id
      limit top;
  elsif months then
    return query
      select s.end_user_id, sum(s.requests)::bigint, sum(s.errors)::bigint, sum(s.cost_usd)
      from (
        select r.end_user_id, r.requests, r.errors, r.cost_usd
        from private.end_user_rollup_monthly r
        where r.bucket >= start_at and r.bucket < end_at
        union all
        select d.end_user_id, d.requests, d.errors, d.cost_usd
        from private.end_user_rollup_deltas d
        where d.bucket >= start_at and d.bucket < end_at
        union all
        select u.end_user_id, 1, (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and u.end_user_id is not null
      ) s
      group by s.end_user_id
      having sum(s.requests) > 0
      order by sum(s.cost_usd) desc, s.end_user_id
      limit top;
  elsif only_org is not null then
    return query
      select s.end_user_id, sum(s.requests)::bigint, sum(s.errors)::bigint, sum(s.cost_usd)
      from (
        select r.end_user_id, r.requests, r.errors, r.cost_usd
        from private.end_user_rollup_daily r
        where r.org_id = only_org and r.bucket >= start_at and r.bucket < end_at
        union all
        select d.end_user_id, d.requests, d.errors, d.cost_usd
        from private.end_user_rollup_deltas d
        where d.org_id = only_org and d.bucket >= start_at and d.bucket < end_at
        union all
        select u.end_user_id, 1, (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.org_id = only_org and u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and u.end_user_id is not null
      ) s
      group by s.end_user_id
      having sum(s.requests) > 0
      order by sum(s.cost_usd) desc, s.end_user_id
      limit top;
  else
    return query
      select s.end_user_id, sum(s.requests)::bigint, sum(s.errors)::bigint, sum(s.cost_usd)
      from (
        select r.end_user_id, r.requests, r.errors, r.cost_usd
        from private.end_user_rollup_daily r
        where r.bucket >= start_at and r.bucket < end_at
        union all
        select d.end_user_id, d.requests, d.errors, d.cost_usd
        from private.end_user_rollup_deltas d
        where d.bucket >= start_at and d.bucket < end_at
        union all
        select u.end_user_id, 1, (u.status <> 'success')::integer, coalesce(u.cost_usd, 0)
        from public.usage_records u
        where u.occurred_at >= wm and u.occurred_at >= start_at and u.occurred_at < end_at
          and u.end_user_id is not null
      ) s
      group by s.end_user_id
      having sum(s.requests) > 0
      order by sum(s.cost_usd) desc, s.end_user_id
      limit top;
  end if;
end
$$;
comment on function private.end_user_summary(timestamptz, timestamptz, uuid, integer) is
  'The top end users by cost over [start_at, end_at) (whole UTC days) under the caller''s RLS.';
