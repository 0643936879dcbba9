-- The report refuses a range past the usage retention (400 days) itself, not only behind the endpoint:
-- it is granted to every signed-in user, and a range of decades would scan and zero-fill a series for
-- every day of it. Raised as 22023 naming the field, which the API answers as a 422.

-- [first, last] of a reconciliation range from the caller's dates (defaults: today, the 1st of last's month).
create function private.reconciliation_span(start_date date, end_date date)
returns table (first date, last date)
language plpgsql stable set search_path = '' as $$
begin
  last := coalesce(reconciliation_span.end_date, (now() at time zone 'UTC')::date);
  first := coalesce(reconciliation_span.start_date, date_trunc('month', last)::date);
  if last < first then
    raise exception 'end_date: must not be before start_date' using errcode = '22023';
  end if;
  if last - first + 1 > 400 then
    raise exception 'end_date: a range holds at most 400 days' using errcode = '22023';
  end if;
  return next;
end
$$;
comment on function private.reconciliation_span(date, date) is
  'A reconciliation range with its defaults, refused (22023) when reversed or longer than 400 days.';
revoke all on function private.reconciliation_span(date, date) from public;
grant execute on function private.reconciliation_span(date, date) to authenticated, service_role;

create or replace function public.reconciliation_report(
  org uuid default null, start_date date default null, end_date date default null, provider text default null,
  canonical_model text default null, group_by text[] default array['day', 'provider', 'canonical_model'])
returns jsonb
language sql stable set search_path = '' set jit = off as $$
  with span as (
    select s.first, s.last from private.reconciliation_span(reconciliation_report.start_date, reconciliation_report.end_date) s
  ), d as (
    select r.* from private.reconciliation_daily r, span s
     where r.day between s.first and s.last
       and (reconciliation_report.org is null or r.org_id = reconciliation_report.org)
       and (reconciliation_report.provider is null or r.provider = reconciliation_report.provider)
       and (reconciliation_report.canonical_model is null or r.canonical_model = reconciliation_report.canonical_model)
  ), c as (
    select r.* from private.reconciliation_causes r
      join d on d.org_id = r.org_id and d.day = r.day and d.provider = r.provider
            and d.canonical_model is not distinct from r.canonical_model
  ), keyed as (
    -- the dimensions not asked for are folded away (null)
    select case when 'org_id' = any (group_by) then d.org_id end as k_org,
           case when 'day' = any (group_by) then d.day end as k_day,
           case when 'provider' = any (group_by) then d.provider end as k_provider,
           case when 'canonical_model' = any (group_by) then d.canonical_model end as k_model, d.*
      from d
  ), cause_keyed as (
    select case when 'org_id' = any (group_by) then c.org_id end as k_org,
           case when 'day' = any (group_by) then c.day end as k_day,
           case when 'provider' = any (group_by) then c.provider end as k_provider,
           case when 'canonical_model' = any (group_by) then c.canonical_model end as k_model,
           c.cause, sum(c.amount_usd) as amount
      from c group by 1, 2, 3, 4, 5
  ), rows as (
    select k.k_org, k.k_day, k.k_provider, k.k_model,
           sum(k.tracked_cost_usd) as tracked_cost, sum(k.billed_cost_usd) as billed_cost, sum(k.gap_usd) as gap,
           sum(k.tracked_requests) as tracked_requests, sum(k.billed_requests) as billed_requests,
           jsonb_build_object(
             'input', sum(k.tracked_input_tokens), 'cached', sum(k.tracked_cached_tokens),
             'cache_write', sum(k.tracked_cache_write_tokens), 'output', sum(k.tracked_output_tokens),
             'reasoning', sum(k.tracked_reasoning_tokens), 'batch', sum(k.tracked_batch_tokens)) as tracked_tokens,
           jsonb_build_object(
             'input', sum(k.billed_input_tokens), 'cached', sum(k.billed_cached_tokens),
             'cache_write', sum(k.billed_cache_write_tokens), 'output', sum(k.billed_output_tokens),
             'reasoning', sum(k.billed_reasoning_tokens), 'batch', sum(k.billed_batch_tokens),
             'web_search_requests', sum(k.billed_web_search_requests)) as billed_tokens
      from keyed k
     group by k.k_org, k.k_day, k.k_provider, k.k_model
  ), per_day as (
    select d.day, sum(d.tracked_cost_usd) as tracked_cost, sum(d.billed_cost_usd) as billed_cost, sum(d.gap_usd) as gap
      from d group by d.day
  ), cause_day as (
    select c.day, c.cause, sum(c.amount_usd) as amount from c group by c.day, c.cause
  ), totals as (
    select c.cause, sum(c.amount_usd) as amount from c group by c.cause
  )
  select jsonb_build_object(
    'data', coalesce((select jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'org_id', r.k_org, 'date', r.k_day, 'provider', r.k_provider, 'canonical_model', r.k_model))
             || jsonb_build_object('tracked_cost', r.tracked_cost, 'billed_cost', r.billed_cost, 'gap', r.gap,
                                   'tracked_requests', r.tracked_requests, 'billed_requests', r.billed_requests,
                                   'tracked_tokens', r.tracked_tokens, 'billed_tokens', r.billed_tokens,
                                   'causes', coalesce((
                                     select jsonb_object_agg(x.cause, x.amount) from cause_keyed x
                                      where x.k_org is not distinct from r.k_org and x.k_day is not distinct from r.k_day
                                        and x.k_provider is not distinct from r.k_provider
                                        and x.k_model is not distinct from r.k_model), '{}'::jsonb))
             order by r.k_day nulls first, r.k_provider, r.k_model, r.k_org) from rows r), '[]'::jsonb),
    'meta', jsonb_build_object(
      'start_date', (select s.first from span s), 'end_date', (select s.last from span s), 'currency', 'USD',
      'group_by', to_jsonb(group_by),
      'totals', jsonb_build_object(
        'tracked_cost', coalesce((select sum(d.tracked_cost_usd) from d), 0),
        'billed_cost', coalesce((select sum(d.billed_cost_usd) from d), 0),
        'gap', coalesce((select sum(d.gap_usd) from d), 0),
        'unexplained', coalesce((select t.amount from totals t where t.cause = 'unexplained'), 0),
        'causes', coalesce((select jsonb_object_agg(t.cause, t.amount) from totals t), '{}'::jsonb)),
      'causes', (select jsonb_agg(jsonb_build_object('cause', k.cause, 'ours', k.ours, 'definition', k.definition)
                                  order by k.position) from private.reconciliation_cause_kinds k),
      'series', (select jsonb_agg(jsonb_build_object(
                          'date', g.day::date,
                          'tracked_cost', coalesce(p.tracked_cost, 0), 'billed_cost', coalesce(p.billed_cost, 0),
                          'gap', coalesce(p.gap, 0))
                        || coalesce((select jsonb_object_agg(k.cause, coalesce(cd.amount, 0))
                                       from private.reconciliation_cause_kinds k
                                       left join cause_day cd on cd.day = g.day::date and cd.cause = k.cause), '{}'::jsonb)
                        order by g.day)
                   from span s
                  cross join generate_series(s.first, s.last, interval '1 day') g (day)
                   left join per_day p on p.day = g.day::date),
      'reconciled_at', (select max(d.reconciled_at) from d)))
$$;
comment on function public.reconciliation_report(uuid, date, date, text, text, text[]) is
  'Tracked vs billed cost per group_by (org_id, day, provider, canonical_model) with the gap by cause, totals, '
  'the cause list and a zero-filled daily series, over the caller''s readable organizations.';
