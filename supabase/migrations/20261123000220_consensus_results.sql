-- A consensus run's life: claimed (one at a time per recommendation), finished in one transaction that
-- stores its rounds, positions and calls and applies the outcome to the recommendation, and kept
-- standing while the recommendation's figures stay where they were reviewed.

-- ---------------------------------------------------------------- material change
create function private.consensus_figures_changed(reviewed_savings numeric, reviewed_cost numeric,
                                                  savings numeric, cost numeric, change numeric) returns boolean
language sql immutable set search_path = '' as $$
  select (reviewed_savings is null) <> (savings is null) or (reviewed_cost is null) <> (cost is null)
      or abs(savings - reviewed_savings) > change * abs(reviewed_savings)
      or abs(cost - reviewed_cost) > change * abs(reviewed_cost)
$$;
comment on function private.consensus_figures_changed(numeric, numeric, numeric, numeric, numeric) is
  'Whether savings or cost moved by more than `change` (a fraction) from the reviewed figures.';
revoke all on function private.consensus_figures_changed(numeric, numeric, numeric, numeric, numeric) from public;

-- ---------------------------------------------------------------- start
create function private.start_consensus_run(rec uuid, triggers text[], signals jsonb, rereview_change numeric)
returns uuid
language sql volatile set search_path = '' as $$
  insert into public.consensus_runs (org_id, recommendation_id, triggers, evidence, reviewed_savings, reviewed_cost,
                                     rereview_change)
  select r.org_id, r.id, triggers, private.consensus_evidence(r.id, signals), r.estimated_monthly_savings,
         r.current_monthly_cost, rereview_change
  from public.recommendations r
  where r.id = rec and r.status in ('open', 'under_review')
  on conflict (recommendation_id) where status = 'running' do nothing
  returning id
$$;
comment on function private.start_consensus_run(uuid, text[], jsonb, numeric) is
  'Claim a review of an open recommendation, snapshotting its evidence; null when one is already running.';
revoke all on function private.start_consensus_run(uuid, text[], jsonb, numeric) from public;

-- A worker that died mid-run leaves its run `running`; after `older_than` it is failed so another may start.
create function private.expire_consensus_runs(older_than interval) returns integer
language sql volatile set search_path = '' as $$
  with expired as (
    update public.consensus_runs set status = 'failed', finished_at = clock_timestamp(),
                                     stop_reason = 'abandoned: the worker stopped before finishing the run'
    where status = 'running' and started_at < now() - older_than
    returning 1
  )
  select count(*)::integer from expired
$$;
comment on function private.expire_consensus_runs(interval) is 'Fail runs left running longer than older_than.';
revoke all on function private.expire_consensus_runs(interval) from public;

-- ---------------------------------------------------------------- finish
-- `result`: {"status": completed|failed|stopped, "stop_reason", "rounds": [{round, score, verdict_agreement,
-- savings_agreement, key_point_overlap, positions: [{role, provider, model, request_id, verdict,
-- adjusted_monthly_savings, confidence, key_points, risks, fallback_used}]}], "calls": [{seq, round, task,
-- provider, model, request_id, input_tokens, output_tokens, cached_tokens, cost_usd, latency_ms,
-- fallback_used, ok, error}], "synthesis": {verdict, description, confidence, savings_source, caveats,
-- dissent}}. Totals are summed from the calls. A completed run is applied when the recommendation is still
-- open or held and its figures have not moved since the snapshot: confidence and caveats from the
-- synthesis, a reject holds it back (under_review), an accept or modify releases a hold of an earlier
-- reject. A failed or stopped run changes nothing but its own record.
create function private.finish_consensus_run(run uuid, result jsonb) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  x public.consensus_runs;
  r public.recommendations;
  syn jsonb := result -> 'synthesis';
  outcome text := result ->> 'status';
  savings numeric;
  held boolean;
begin
  select * into x from public.consensus_runs where id = run for update;
  if x.id is null or x.status <> 'running' then
    raise exception 'consensus run %: not running', run using errcode = 'P0002';
  end if;
  if outcome is null or outcome not in ('completed', 'failed', 'stopped') then
    raise exception 'status: must be completed, failed or stopped' using errcode = '22023';
  end if;

  insert into public.consensus_rounds (run_id, org_id, round, score, verdict_agreement, savings_agreement,
                                       key_point_overlap)
  select run, x.org_id, q.round, q.score, q.verdict_agreement, q.savings_agreement, q.key_point_overlap
  from jsonb_to_recordset(coalesce(result -> 'rounds', '[]')) as q(round integer, score numeric,
       verdict_agreement numeric, savings_agreement numeric, key_point_overlap numeric);
  insert into public.consensus_positions (run_id, org_id, round, role, provider, model, request_id, verdict,
                                          adjusted_monthly_savings, confidence, key_points, risks, fallback_used)
  select run, x.org_id, (q.value ->> 'round')::integer, p.role, p.provider, p.model, p.request_id, p.verdict,
         p.adjusted_monthly_savings, p.confidence, coalesce(p.key_points, '[]'), coalesce(p.risks, '[]'),
         coalesce(p.fallback_used, false)
  from jsonb_array_elements(coalesce(result -> 'rounds', '[]')) q
  cross join lateral jsonb_to_recordset(q.value -> 'positions') as p(role text, provider text, model text,
       request_id text, verdict text, adjusted_monthly_savings numeric, confidence numeric, key_points jsonb,
       risks jsonb, fallback_used boolean);
  insert into public.consensus_calls (run_id, org_id, seq, round, task, provider, model, request_id, input_tokens,
                                      output_tokens, cached_tokens, cost_usd, latency_ms, fallback_used, ok, error)
  select run, x.org_id, c.seq, c.round, c.task, c.provider, c.model, c.request_id, c.input_tokens, c.output_tokens,
         coalesce(c.cached_tokens, 0), c.cost_usd, c.latency_ms, coalesce(c.fallback_used, false), c.ok, c.error
  from jsonb_to_recordset(coalesce(result -> 'calls', '[]')) as c(seq integer, round integer, task text,
       provider text, model text, request_id text, input_tokens bigint, output_tokens bigint, cached_tokens bigint,
       cost_usd numeric, latency_ms integer, fallback_used boolean, ok boolean, error text);

  -- The final savings figure is the adopted agent's last-round estimate, never one the synthesizer wrote.
  if outcome = 'completed' then
    select p.adjusted_monthly_savings into savings from public.consensus_positions p
    where p.run_id = run and p.role = syn ->> 'savings_source' order by p.round desc limit 1;
  end if;

  update public.consensus_runs u
     set status = outcome, stop_reason = result ->> 'stop_reason', finished_at = clock_timestamp(),
         rounds = (select count(*) from public.consensus_rounds q where q.run_id = run),
         score = (select q.score from public.consensus_rounds q where q.run_id = run order by q.round desc limit 1),
         verdict = syn ->> 'verdict', description = syn ->> 'description',
         confidence = (syn ->> 'confidence')::numeric, savings_source = syn ->> 'savings_source',
         adjusted_monthly_savings = savings,
         caveats = coalesce(syn -> 'caveats', '[]'), dissent = coalesce(syn -> 'dissent', '[]'),
         (calls, input_tokens, output_tokens, cached_tokens, cost_usd) = (
           select count(*), coalesce(sum(c.input_tokens), 0), coalesce(sum(c.output_tokens), 0),
                  coalesce(sum(c.cached_tokens), 0), coalesce(sum(c.cost_usd), 0)
           from public.consensus_calls c where c.run_id = run)
   where u.id = run
  returning * into x;

  if outcome = 'completed' then
    select * into r from public.recommendations where id = x.recommendation_id for update;
    if r.status in ('open', 'under_review') and not private.consensus_figures_changed(
         x.reviewed_savings, x.reviewed_cost, r.estimated_monthly_savings, r.current_monthly_cost, x.rereview_change)
    then
      -- Held by consensus: the last review applied before this one rejected it.
      held := coalesce((select p.verdict = 'reject' from public.consensus_runs p
                        where p.recommendation_id = r.id and p.applied and p.id <> run
                        order by p.finished_at desc limit 1), false);
      update public.recommendations
         set detector_confidence = case when consensus_run_id is null then confidence else detector_confidence end,
             confidence = x.confidence, caveats = x.caveats, consensus_run_id = run,
             status = case when x.verdict = 'reject' then 'under_review'
                           when status = 'under_review' and held then 'open' else status end
       where id = r.id;
      update public.consensus_runs set applied = true where id = run;
      x.applied := true;
    end if;
  end if;
  return jsonb_build_object('run_id', run, 'status', x.status, 'applied', x.applied, 'verdict', x.verdict,
                            'rounds', x.rounds, 'cost_usd', x.cost_usd);
end
$$;
comment on function private.finish_consensus_run(uuid, jsonb) is
  'Store a run''s rounds, positions and calls with its outcome, and apply a completed one to its recommendation.';
revoke all on function private.finish_consensus_run(uuid, jsonb) from public;

-- ---------------------------------------------------------------- a standing review
-- The recommendations job rewrites confidence every hour. While the figures stay within the review's
-- tolerance the review's confidence and caveats stand (the detector's own confidence is kept aside);
-- once they move, the review stops standing, the detector's confidence returns and the job reviews again.
-- A rejected recommendation that expires and comes back stays held.
create function private.keep_consensus_review() returns trigger
language plpgsql set search_path = '' as $$
declare
  x public.consensus_runs;
begin
  if new.consensus_run_id is distinct from old.consensus_run_id then
    return new;  -- a review being applied or withdrawn
  end if;
  if new.last_seen_at is distinct from old.last_seen_at or new.confidence is distinct from old.confidence then
    new.detector_confidence := new.confidence;  -- a detector wrote its own confidence
  end if;
  select * into x from public.consensus_runs where id = old.consensus_run_id;
  if private.consensus_figures_changed(x.reviewed_savings, x.reviewed_cost, new.estimated_monthly_savings,
                                       new.current_monthly_cost, x.rereview_change) then
    new.consensus_run_id := null;
    new.caveats := '[]';
    new.confidence := new.detector_confidence;
  else
    new.confidence := x.confidence;
    new.caveats := x.caveats;
    if x.verdict = 'reject' and old.status = 'expired' and new.status = 'open' then
      new.status := 'under_review';
    end if;
  end if;
  return new;
end
$$;
comment on function private.keep_consensus_review() is
  'Trigger: keep a standing consensus review''s confidence and caveats on a recommendation until its figures move.';
create trigger keep_consensus_review before update on public.recommendations
  for each row when (old.consensus_run_id is not null) execute function private.keep_consensus_review();

-- ---------------------------------------------------------------- read
create function public.recommendation_consensus(rec uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
  result jsonb;
begin
  select jsonb_build_object(
    'recommendation_id', r.id, 'status', r.status, 'confidence', r.confidence,
    'detector_confidence', r.detector_confidence, 'caveats', r.caveats, 'standing_run_id', r.consensus_run_id,
    'runs', (
      select jsonb_agg(to_jsonb(x) - 'org_id' || jsonb_build_object(
        'round_count', x.rounds, 'call_count', x.calls,
        'rounds', (
          select coalesce(jsonb_agg(to_jsonb(q) - 'org_id' - 'run_id' || jsonb_build_object(
            'positions', (
              select coalesce(jsonb_agg(to_jsonb(p) - 'org_id' - 'run_id' - 'id' || t.totals
                                        order by array_position(array['analyst', 'skeptic', 'advocate'], p.role)),
                              '[]')
              from public.consensus_positions p
              cross join lateral (
                select jsonb_build_object('input_tokens', coalesce(sum(c.input_tokens), 0),
                                          'output_tokens', coalesce(sum(c.output_tokens), 0),
                                          'cost_usd', coalesce(sum(c.cost_usd), 0), 'calls', count(*)) as totals
                from public.consensus_calls c
                where c.run_id = p.run_id and c.round = p.round and c.task = 'consensus.' || p.role) t
              where p.run_id = q.run_id and p.round = q.round))
            order by q.round), '[]')
          from public.consensus_rounds q where q.run_id = x.id),
        'calls', (
          select coalesce(jsonb_agg(to_jsonb(c) - 'org_id' - 'run_id' - 'id' order by c.seq), '[]')
          from public.consensus_calls c where c.run_id = x.id))
        order by x.started_at desc)
      from public.consensus_runs x where x.recommendation_id = r.id))
  into result
  from public.recommendations r where r.id = rec;
  if result is null or jsonb_typeof(result -> 'runs') is distinct from 'array' then
    raise exception 'recommendation: no consensus review of % that you may read', rec using errcode = 'P0002';
  end if;
  return result;
end
$$;
comment on function public.recommendation_consensus(uuid) is
  'Every consensus run of a recommendation the caller may read, newest first, with rounds, positions and calls.';
revoke all on function public.recommendation_consensus(uuid) from public;
grant execute on function public.recommendation_consensus(uuid) to authenticated, service_role;
