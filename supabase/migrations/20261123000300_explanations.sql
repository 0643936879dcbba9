-- Grounded explanations (worker job `explanations`): one current explanation per anomaly and per
-- recommendation, with where its prose came from (an LLM, or a template when the LLM is off, capped, or
-- cited a number the evidence lacks), what producing it cost, and the evidence it was grounded on.
-- The evidence is built in SQL (20261123000310 anomalies, 20261123000320 recommendations).

create table public.explanations (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  anomaly_id uuid references public.anomalies (id) on delete cascade,
  recommendation_id uuid references public.recommendations (id) on delete cascade,
  headline text not null,
  body text not null,
  source text not null constraint source_is_llm_or_template check (source in ('llm', 'template')),
  fallback_reason text constraint fallback_reason_is_known
    check (fallback_reason in ('llm_off', 'ai_cap_reached', 'ungrounded', 'llm_failed')),
  note text,
  provider text,
  model text,
  llm_calls integer not null default 0 constraint llm_calls_is_not_negative check (llm_calls >= 0),
  input_tokens integer not null default 0,
  output_tokens integer not null default 0,
  cached_tokens integer not null default 0,
  cost_usd numeric(14, 6) not null default 0,
  rejected jsonb not null default '[]',
  evidence jsonb not null,
  -- jsonb's text form is canonical (keys sorted), so equal evidence always hashes equal.
  evidence_hash text not null generated always as (md5(evidence::text)) stored,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint explains_exactly_one_subject check (num_nonnulls(anomaly_id, recommendation_id) = 1),
  constraint a_template_says_why check ((source = 'template') = (fallback_reason is not null)),
  constraint an_llm_explanation_names_its_model check (source = 'template' or model is not null),
  constraint one_explanation_per_anomaly unique (anomaly_id),
  constraint one_explanation_per_recommendation unique (recommendation_id)
);
comment on table public.explanations is
  'The current prose explanation of an anomaly or a recommendation and the evidence it was grounded on.';
comment on column public.explanations.source is
  'llm: written by the model and every number checked against the evidence; template: built from the evidence.';
comment on column public.explanations.fallback_reason is
  'Why a template was stored: llm_off (no provider key), ai_cap_reached, ungrounded (the model cited numbers '
  'absent from the evidence twice), llm_failed (provider errors or malformed answers).';
comment on column public.explanations.note is 'For operators: e.g. how to turn the LLM on.';
comment on column public.explanations.llm_calls is 'Provider calls spent on this explanation, rejected ones included.';
comment on column public.explanations.cost_usd is 'AI spend of those calls, at our own prices.';
comment on column public.explanations.rejected is
  'One entry per rejected answer: {"attempt", "model", "unsupported": [numbers as written]}.';
comment on column public.explanations.evidence is 'The figures the prose may cite (anomaly_evidence / recommendation_evidence).';
create index explanations_org_id_idx on public.explanations (org_id);
create trigger touch_updated_at before update on public.explanations
  for each row execute function private.touch_updated_at();
create trigger forbid_org_change before update on public.explanations
  for each row execute function private.forbid_org_change();

-- Readers of the subject read its explanation; only the service (the worker) writes.
alter table public.explanations enable row level security;
create policy "members who read anomalies or recommendations read their explanations" on public.explanations
  for select to authenticated
  using ((anomaly_id is not null and org_id = any ((select private.org_ids_with('anomalies.read'))::uuid[]))
         or (recommendation_id is not null
             and org_id = any ((select private.org_ids_with('recommendations.read'))::uuid[])));
grant select on public.explanations to authenticated;

-- ---------------------------------------------------------------- read
-- What GET .../anomalies/{id}/explanation and .../recommendations/{id}/explanation answer, run as the caller:
-- null when there is none or RLS hides it.
create function public.explanation_of(anomaly uuid default null, recommendation uuid default null) returns jsonb
language sql stable security invoker set search_path = '' as $$
  select jsonb_build_object('id', x.id, 'org_id', x.org_id, 'anomaly_id', x.anomaly_id,
                            'recommendation_id', x.recommendation_id, 'headline', x.headline, 'body', x.body,
                            'source', x.source, 'fallback_reason', x.fallback_reason, 'note', x.note,
                            'provider', x.provider, 'model', x.model, 'llm_calls', x.llm_calls,
                            'input_tokens', x.input_tokens, 'output_tokens', x.output_tokens,
                            'cached_tokens', x.cached_tokens, 'cost_usd', x.cost_usd, 'rejected', x.rejected,
                            'evidence', x.evidence, 'created_at', x.created_at, 'updated_at', x.updated_at)
  from public.explanations x
  where (anomaly is not null and x.anomaly_id = anomaly)
     or (recommendation is not null and x.recommendation_id = recommendation)
  limit 1
$$;
comment on function public.explanation_of(uuid, uuid) is
  'The explanation of one anomaly or recommendation the caller may read, with its evidence; null if none.';
revoke all on function public.explanation_of(uuid, uuid) from public;
grant execute on function public.explanation_of(uuid, uuid) to authenticated, service_role;
