-- Twelve detectors start from the same per-scope sums of their chunk (private.detector_scopes over the
-- 30-day window), and each recomputed them: about half of the detectors' time in `tokentra bench engine`.
-- The recommendations job now computes them once per chunk (private.detector_scopes_remember) into a
-- temporary table that lives until it forgets them (private.detector_scopes_forget) or the transaction
-- ends; private.detector_scopes serves any call for organizations and a window start it holds from that
-- table and computes every other call as before (private.detector_scopes_of), so an analyst or a test
-- calling a detector by hand, with nothing remembered, reads the rollups as before. The job remembers
-- only while its own transaction reads and nothing in it writes usage.

-- ---------------------------------------------------------------- the computation, unchanged
create function private.detector_scopes_of(p_orgs uuid[], p_since timestamptz)
returns table (org_id uuid, feature text, provider text, model text, requests bigint, errors bigint,
               timeouts bigint, retries bigint, rate_limited bigint, input_tokens bigint, output_tokens bigint,
               cached_tokens bigint, cost numeric, error_cost numeric, timeout_cost numeric, cancelled bigint,
               cancelled_cost numeric, rate_limited_calls bigint, rate_limited_cost numeric, series jsonb)
language sql stable parallel safe as $$
  select d.org_id, d.feature, d.provider, d.model,
         sum(d.requests)::bigint, sum(d.errors)::bigint, sum(d.timeouts)::bigint, sum(d.retries)::bigint,
         sum(d.rate_limited)::bigint, sum(d.input_tokens)::bigint, sum(d.output_tokens)::bigint,
         sum(d.cached_tokens)::bigint, sum(d.cost), sum(d.error_cost), sum(d.timeout_cost),
         sum(d.cancelled)::bigint, sum(d.cancelled_cost), sum(d.rate_limited_calls)::bigint,
         sum(d.rate_limited_cost),
         pg_catalog.jsonb_object_agg(d.day::text, round(d.cost, 6) order by d.day)
    from (
      select u.org_id, u.feature, u.provider, u.model, u.day,
             sum(u.requests) as requests, coalesce(sum(u.errors) filter (where u.status = 'error'), 0) as errors,
             sum(u.timeouts) as timeouts, sum(u.retries) as retries, sum(u.rate_limited) as rate_limited,
             sum(u.input_tokens) as input_tokens, sum(u.output_tokens) as output_tokens,
             sum(u.cached_tokens) as cached_tokens, sum(u.cost) as cost,
             coalesce(sum(u.cost) filter (where u.status = 'error'), 0) as error_cost,
             coalesce(sum(u.cost) filter (where u.status = 'timeout'), 0) as timeout_cost,
             coalesce(sum(u.requests) filter (where u.status = 'cancelled'), 0) as cancelled,
             coalesce(sum(u.cost) filter (where u.status = 'cancelled'), 0) as cancelled_cost,
             coalesce(sum(u.requests) filter (where u.status = 'rate_limited'), 0) as rate_limited_calls,
             coalesce(sum(u.cost) filter (where u.status = 'rate_limited'), 0) as rate_limited_cost
        from private.detector_daily(p_orgs, p_since) u
       group by 1, 2, 3, 4, 5
      having sum(u.requests) <> 0
    ) d
   group by 1, 2, 3, 4
$$;
comment on function private.detector_scopes_of(uuid[], timestamptz) is
  'Per organization, feature (''(none)'' if untagged), provider and canonical model since p_since, computed from '
  'the daily rollups: what private.detector_scopes returns when nothing is remembered.';

-- ---------------------------------------------------------------- remember, forget
create function private.detector_scopes_remember(p_orgs uuid[], p_now timestamptz) returns integer
language plpgsql volatile set search_path = '' as $$
declare
  since timestamptz := (select min(w.since) from private.detector_window(p_orgs, p_now) w);
  n integer;
begin
  perform private.detector_scopes_forget();
  create temporary table detector_scopes_memo_key on commit drop as select p_orgs as orgs, since;
  create temporary table detector_scopes_memo on commit drop as
    select * from private.detector_scopes_of(p_orgs, since);
  get diagnostics n = row_count;
  create index on pg_temp.detector_scopes_memo (org_id);
  analyze pg_temp.detector_scopes_memo;
  return n;
end
$$;
comment on function private.detector_scopes_remember(uuid[], timestamptz) is
  'Compute private.detector_scopes once for these organizations and the detectors'' window before p_now, so '
  'every detector run for them in this transaction reads it from a temporary table (until '
  'private.detector_scopes_forget or the end of the transaction); returns the scopes remembered. Call it only '
  'where nothing writes usage before the detectors run.';

create function private.detector_scopes_forget() returns void
language plpgsql volatile set search_path = '' as $$
begin
  -- Checked first: a drop of what is not there would notice every caller.
  if pg_catalog.to_regclass('pg_temp.detector_scopes_memo_key') is not null then
    drop table pg_temp.detector_scopes_memo_key;
  end if;
  if pg_catalog.to_regclass('pg_temp.detector_scopes_memo') is not null then
    drop table pg_temp.detector_scopes_memo;
  end if;
end
$$;
comment on function private.detector_scopes_forget() is
  'Drop what private.detector_scopes_remember computed: every later call computes from the rollups again.';

-- ---------------------------------------------------------------- the detectors' entry point
-- Not inlinable any more (PL/pgSQL): the twelve detectors that read it for their whole chunk never were
-- (their window start is a subquery); the five that read one scope per finding now read that
-- organization's scopes whole, which the remembered table makes an index probe.
create or replace function private.detector_scopes(p_orgs uuid[], p_since timestamptz)
returns table (org_id uuid, feature text, provider text, model text, requests bigint, errors bigint,
               timeouts bigint, retries bigint, rate_limited bigint, input_tokens bigint, output_tokens bigint,
               cached_tokens bigint, cost numeric, error_cost numeric, timeout_cost numeric, cancelled bigint,
               cancelled_cost numeric, rate_limited_calls bigint, rate_limited_cost numeric, series jsonb)
language plpgsql stable parallel restricted set search_path = '' as $$
begin
  -- Two steps: the remembered tables' names resolve only once they exist.
  if pg_catalog.to_regclass('pg_temp.detector_scopes_memo_key') is not null then
    if exists (select from pg_temp.detector_scopes_memo_key k where k.since = p_since and p_orgs <@ k.orgs) then
      return query select m.* from pg_temp.detector_scopes_memo m where m.org_id = any (p_orgs);
      return;
    end if;
  end if;
  return query select s.* from private.detector_scopes_of(p_orgs, p_since) s;
end
$$;

revoke all on function private.detector_scopes_of(uuid[], timestamptz),
  private.detector_scopes_remember(uuid[], timestamptz), private.detector_scopes_forget() from public;
grant execute on function private.detector_scopes_of(uuid[], timestamptz),
  private.detector_scopes_remember(uuid[], timestamptz), private.detector_scopes_forget() to service_role;
