-- Multi-agent consensus (issue 7, seed 000 §7): the record of every review of a recommendation by the
-- analyst, skeptic and user advocate agents and the synthesizer. A run has rounds, each round its
-- consensus score and one structured position per agent, and every provider call is kept with its
-- tokens and cost. Members read these as they read recommendations; only the worker writes them.

-- ---------------------------------------------------------------- runs
create table public.consensus_runs (
  id uuid primary key default gen_random_uuid(),
  org_id uuid not null references public.organizations (id) on delete cascade,
  recommendation_id uuid not null references public.recommendations (id) on delete cascade,
  status text not null default 'running' constraint status_is_known
    check (status in ('running', 'completed', 'failed', 'stopped')),
  triggers text[] not null constraint triggers_are_known check (
    cardinality(triggers) > 0 and triggers <@ array['high_savings', 'enterprise_plan', 'conflicting_signals',
                                                     'production_scope', 'low_confidence']),
  evidence jsonb not null,
  reviewed_savings numeric(14, 4),
  reviewed_cost numeric(14, 4),
  rereview_change numeric(6, 3) not null constraint rereview_change_is_positive check (rereview_change > 0),
  rounds integer not null default 0 constraint rounds_are_few check (rounds between 0 and 10),
  score numeric(4, 3) constraint score_is_a_fraction check (score between 0 and 1),
  verdict text constraint verdict_is_known check (verdict in ('accept', 'modify', 'reject')),
  description text,
  confidence numeric(4, 3) constraint confidence_is_a_probability check (confidence between 0 and 1),
  adjusted_monthly_savings numeric(14, 4) constraint savings_are_not_negative check (adjusted_monthly_savings >= 0),
  savings_source text constraint savings_come_from_an_agent check (savings_source in ('analyst', 'skeptic', 'advocate')),
  caveats jsonb not null default '[]',
  dissent jsonb not null default '[]',
  applied boolean not null default false,
  stop_reason text,
  calls integer not null default 0,
  input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  cached_tokens bigint not null default 0,
  cost_usd numeric(20, 12) not null default 0,
  -- The clock, not the transaction's start: runs finished in one transaction still order.
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  constraint run_is_of_one_organization unique (id, org_id),
  constraint only_running_runs_are_unfinished check ((status = 'running') = (finished_at is null)),
  constraint completed_runs_have_a_verdict check (
    status <> 'completed' or (verdict is not null and confidence is not null and score is not null
                              and description is not null and adjusted_monthly_savings is not null)),
  constraint unsuccessful_runs_say_why check (status not in ('failed', 'stopped') or stop_reason is not null),
  constraint only_completed_runs_are_applied check (not applied or status = 'completed')
);
comment on table public.consensus_runs is
  'One multi-agent review of a recommendation: why it ran, what the agents were given, the outcome and its cost.';
comment on column public.consensus_runs.evidence is
  'Exactly what the agents were given: the recommendation''s figures and evidence from SQL, never prompts.';
comment on column public.consensus_runs.reviewed_savings is
  'The estimated monthly savings reviewed; the review stops standing when the figure moves by rereview_change.';
comment on column public.consensus_runs.savings_source is
  'Whose last-round savings estimate the synthesis adopted: the final figure always comes from a position.';
comment on column public.consensus_runs.applied is
  'The outcome was written to the recommendation (confidence, caveats, status on reject).';
comment on column public.consensus_runs.stop_reason is 'Why a run failed or stopped (AI spend cap, malformed answers).';
-- A recommendation is reviewed by one run at a time, whatever the number of workers.
create unique index one_running_review_per_recommendation on public.consensus_runs (recommendation_id)
  where status = 'running';
create index consensus_runs_recommendation_idx on public.consensus_runs (recommendation_id, started_at desc);
create index consensus_runs_org_idx on public.consensus_runs (org_id, started_at desc);

-- ---------------------------------------------------------------- rounds and positions
create table public.consensus_rounds (
  run_id uuid not null,
  org_id uuid not null,
  round integer not null constraint round_is_counted_from_one check (round between 1 and 10),
  score numeric(4, 3) not null constraint score_is_a_fraction check (score between 0 and 1),
  verdict_agreement numeric(4, 3) not null,
  savings_agreement numeric(4, 3) not null,
  key_point_overlap numeric(4, 3) not null,
  primary key (run_id, round),
  constraint round_belongs_to_its_run foreign key (run_id, org_id)
    references public.consensus_runs (id, org_id) on delete cascade
);
comment on table public.consensus_rounds is
  'One debate round: the consensus score of its positions and the three parts it is made of.';

create table public.consensus_positions (
  id bigint generated always as identity primary key,
  run_id uuid not null,
  org_id uuid not null,
  round integer not null,
  role text not null constraint role_is_a_debater check (role in ('analyst', 'skeptic', 'advocate')),
  provider text not null,
  model text not null,
  request_id text not null,
  verdict text not null constraint verdict_is_known check (verdict in ('accept', 'modify', 'reject')),
  adjusted_monthly_savings numeric(14, 4) not null constraint savings_are_not_negative
    check (adjusted_monthly_savings >= 0),
  confidence numeric(4, 3) not null constraint confidence_is_a_probability check (confidence between 0 and 1),
  key_points jsonb not null default '[]',
  risks jsonb not null default '[]',
  fallback_used boolean not null default false,
  constraint one_position_per_agent_and_round unique (run_id, round, role),
  constraint position_belongs_to_its_round foreign key (run_id, round)
    references public.consensus_rounds (run_id, round) on delete cascade,
  constraint position_belongs_to_its_run foreign key (run_id, org_id)
    references public.consensus_runs (id, org_id) on delete cascade
);
comment on table public.consensus_positions is
  'An agent''s structured position in a round: verdict, adjusted monthly savings, confidence, key points, risks.';

-- ---------------------------------------------------------------- calls
create table public.consensus_calls (
  id bigint generated always as identity primary key,
  run_id uuid not null,
  org_id uuid not null,
  seq integer not null,
  round integer,
  task text not null,
  provider text not null,
  model text not null,
  request_id text not null,
  input_tokens bigint not null constraint tokens_are_not_negative
    check (input_tokens >= 0 and output_tokens >= 0 and cached_tokens >= 0),
  output_tokens bigint not null,
  cached_tokens bigint not null default 0,
  cost_usd numeric(20, 12) not null constraint cost_is_not_negative check (cost_usd >= 0),
  latency_ms integer not null,
  fallback_used boolean not null default false,
  ok boolean not null,
  error text,
  constraint calls_are_ordered_in_their_run unique (run_id, seq),
  constraint call_belongs_to_its_run foreign key (run_id, org_id)
    references public.consensus_runs (id, org_id) on delete cascade
);
comment on table public.consensus_calls is
  'Every provider request a run made, failed ones included (round null: the synthesis); its request_id is the '
  'usage row of the internal organization.';
create index consensus_calls_org_idx on public.consensus_calls (org_id);

select private.create_tenant_policies('public.consensus_runs', 'recommendations', writable => false);
select private.create_tenant_policies('public.consensus_rounds', 'recommendations', writable => false);
select private.create_tenant_policies('public.consensus_positions', 'recommendations', writable => false);
select private.create_tenant_policies('public.consensus_calls', 'recommendations', writable => false);
grant select on public.consensus_runs, public.consensus_rounds, public.consensus_positions, public.consensus_calls
  to authenticated;

-- ---------------------------------------------------------------- what a review changes
alter table public.recommendations
  add column caveats jsonb not null default '[]',
  add column consensus_run_id uuid references public.consensus_runs (id) on delete set null,
  add column detector_confidence numeric(4, 3)
    constraint detector_confidence_is_a_probability check (detector_confidence between 0 and 1);
comment on column public.recommendations.caveats is 'From the standing consensus review: what to watch when applying.';
comment on column public.recommendations.consensus_run_id is
  'The consensus review that stands for the current figures; null when never reviewed or the figures moved since.';
comment on column public.recommendations.detector_confidence is
  'The detector''s own confidence, kept while a consensus review overrides `confidence`.';

-- Where "scope tagged production" (seed 000 §7.4) is read: tags on teams and projects.
alter table public.teams add column tags text[] not null default '{}';
alter table public.projects add column tags text[] not null default '{}';
comment on column public.teams.tags is 'Free labels; `production` makes recommendations on this team''s traffic reviewed.';
comment on column public.projects.tags is
  'Free labels; `production` makes recommendations on this project''s traffic reviewed.';
