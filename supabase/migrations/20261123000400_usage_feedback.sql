-- Quality feedback: a score in [0, 1] a customer sends for one call it reported, after it judged the
-- answer (a user's thumbs up, an evaluation). Kept beside usage, not in it: feedback arrives later,
-- from another request, and must never touch the ingest hot path or a usage partition.

create table private.usage_feedback (
  org_id uuid not null references public.organizations (id) on delete cascade,
  request_id text not null constraint request_id_is_short check (length(request_id) between 1 and 200),
  score numeric(4, 3) not null constraint score_is_between_0_and_1 check (score between 0 and 1),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (org_id, request_id)
);
alter table private.usage_feedback enable row level security;
comment on table private.usage_feedback is
  'One quality score per reported call (the latest sent wins); read by the quality-cost Pareto detector.';
create index usage_feedback_created_idx on private.usage_feedback (created_at);

-- Store a validated batch of feedback for one organization. `items` is a JSON array of
-- {idx, request_id, score}; a request id sent twice in the batch keeps its last score. The outcome
-- says whether the call is known yet ('accepted') or not ('unmatched': stored anyway, since the
-- usage event may still be on its way).
create function private.record_feedback(org uuid, items jsonb)
returns table (idx integer, outcome text)
language sql volatile set search_path = '' as $$
  with input as (
    select distinct on (i.request_id) i.idx, i.request_id, i.score
    from jsonb_to_recordset(items) as i (idx integer, request_id text, score numeric)
    order by i.request_id, i.idx desc
  ), stored as (
    insert into private.usage_feedback as f (org_id, request_id, score)
    select org, i.request_id, i.score from input i
    on conflict (org_id, request_id) do update set score = excluded.score, updated_at = now()
    returning f.request_id
  )
  select i.idx,
         case when exists (select 1 from private.usage_request_ids r
                            where r.org_id = org and r.request_id = i.request_id)
              then 'accepted' else 'unmatched' end
  from jsonb_to_recordset(items) as i (idx integer, request_id text)
  order by i.idx
$$;
comment on function private.record_feedback(uuid, jsonb) is
  'Upsert quality scores for an organization''s calls; one outcome (accepted|unmatched) per item index.';
revoke all on function private.record_feedback(uuid, jsonb) from public;
grant execute on function private.record_feedback(uuid, jsonb) to service_role;

-- Feedback lives as long as the usage it judges.
insert into private.periodic_jobs (name, schedule, command, description) values
  ('tokentra-feedback-retention', '23 3 * * *',
   'delete from private.usage_feedback where created_at < now() - (select retention from private.usage_layout)',
   'Drop quality feedback older than the usage retention period.');
select private.schedule_periodic_jobs();
