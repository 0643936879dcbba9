-- AI spend: what TokenTRA's own LLM calls made on an organization's behalf cost this calendar month (UTC),
-- read from the internal organization's usage, against the organization's cap.

-- No extra index: the internal organization's rows of a month are few and usage_records_org_time_idx
-- finds them; an index on end_user_id would slow every customer's ingest.

-- Definer: the rows belong to the internal organization, which no customer may read; a signed-in caller
-- gets nothing for an organization whose usage it may not read.
create function public.ai_spend(org uuid, as_of timestamptz default now())
returns table (org_id uuid, month_start timestamptz, spend_usd numeric, calls bigint, cap_usd numeric)
language plpgsql stable security definer set search_path = '' as $$
declare
  start_at timestamptz := date_trunc('month', as_of, 'UTC');
begin
  if (select auth.uid()) is not null and not private.has_permission(org, 'usage.read') then
    return;
  end if;
  return query
    select org, start_at,
           coalesce(sum(u.cost_usd), 0)::numeric, count(u.*),
           coalesce((select b.ai_monthly_cap_usd from public.billing_profiles b where b.org_id = org), 50)::numeric
      from public.usage_records u
     where u.org_id = private.internal_org_id()
       and u.end_user_id = org::text
       and u.occurred_at >= start_at
       and u.occurred_at < start_at + interval '1 month';
end
$$;
comment on function public.ai_spend(uuid, timestamptz) is
  'AI spend made on the organization''s behalf in the UTC calendar month of as_of, its call count and its cap.';
revoke all on function public.ai_spend(uuid, timestamptz) from public;
grant execute on function public.ai_spend(uuid, timestamptz) to authenticated, service_role;
