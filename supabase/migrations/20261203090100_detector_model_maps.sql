-- What the routing and hosting detectors need to know about models and providers beyond the model
-- registry (private.model_families: tiers, successors). Successors come from the registry; these tables
-- hold only what it lacks: which tasks a budget model does as well as a large one, each provider's budget
-- model, cheaper alternatives that are not successors (an embedding model of comparable retrieval
-- quality), and the providers we would route a customer's traffic to.

-- ---------------------------------------------------------------- budget-tier tasks
create table private.budget_tier_tasks (
  task_type text primary key constraint task_type_is_lower_case check (task_type = lower(task_type)),
  reason text not null
);
alter table private.budget_tier_tasks enable row level security;
comment on table private.budget_tier_tasks is
  'SDK task types a budget model handles as well as a premium one: calls of these on a larger model are routing '
  'candidates (task_aware_routing).';
comment on column private.budget_tier_tasks.task_type is 'Task type as the SDK classifier names it (usage_records.task_type).';
comment on column private.budget_tier_tasks.reason is 'Why a budget model suffices for it.';

insert into private.budget_tier_tasks (task_type, reason) values
  ('greeting', 'short conversational reply'),
  ('faq', 'answer from known content'),
  ('chitchat', 'short conversational reply'),
  ('clarification', 'short follow-up question'),
  ('formatting', 'mechanical transformation of given text'),
  ('proofreading', 'local edits of given text'),
  ('sentiment', 'label from a small fixed set'),
  ('classification', 'label from a small fixed set'),
  ('entity_extraction', 'spans copied from the input'),
  ('data_extraction', 'fields copied from the input'),
  ('code_completion', 'short continuation of given code');

-- ---------------------------------------------------------------- each provider's budget model
create table private.provider_budget_models (
  provider_id text primary key,
  model text not null,
  reason text not null
);
alter table private.provider_budget_models enable row level security;
comment on table private.provider_budget_models is
  'The model budget-tier tasks are routed to at each provider (names only; prices come from the pricing tables).';
comment on column private.provider_budget_models.provider_id is 'Provider as usage_records.provider names it.';
comment on column private.provider_budget_models.model is 'The provider''s budget model, as a routing rule names it.';
comment on column private.provider_budget_models.reason is 'Why this model (quality at the budget tier, availability).';

insert into private.provider_budget_models (provider_id, model, reason) values
  ('openai', 'gpt-4o-mini', 'budget tier with the quality priors of the published table'),
  ('anthropic', 'claude-3-5-haiku-latest', 'budget tier with the quality priors of the published table'),
  ('google', 'gemini-2.0-flash', 'budget tier with the quality priors of the published table');

-- ---------------------------------------------------------------- cheaper alternatives
-- Not successors (the registry has those): a cheaper model of comparable quality for the same job.
create table private.model_alternatives (
  model text not null constraint model_is_lower_case check (model = lower(model)),
  kind text not null constraint kind_is_known check (kind in ('embedding')),
  alternative text not null,
  reason text not null,
  primary key (model, kind)
);
alter table private.model_alternatives enable row level security;
comment on table private.model_alternatives is
  'A cheaper model of comparable quality for the same job, where the registry names no successor '
  '(embedding_optimization reads kind embedding, then the registry successor of an embedding model).';
comment on column private.model_alternatives.model is 'Canonical model id (usage_records.canonical_model).';
comment on column private.model_alternatives.kind is 'What the alternative is for: embedding.';
comment on column private.model_alternatives.alternative is 'The cheaper model of the same provider.';
comment on column private.model_alternatives.reason is 'Why its quality is comparable.';

insert into private.model_alternatives (model, kind, alternative, reason) values
  ('text-embedding-3-large', 'embedding', 'text-embedding-3-small',
   'retrieval quality close to the large model (MTEB), a sixth of the price; fewer dimensions');

-- ---------------------------------------------------------------- providers we route to
create table private.routable_providers (
  provider_id text primary key,
  reason text not null
);
alter table private.routable_providers enable row level security;
comment on table private.routable_providers is
  'Providers a recommendation may move traffic to: the model makers'' own APIs, the major clouds and established '
  'inference hosts. The pricing tables also list resellers and routers; a cheaper price there is not advice we '
  'would give without knowing their terms (provider_arbitrage).';
comment on column private.routable_providers.provider_id is 'genai-prices provider id (public.model_prices.provider_id).';
comment on column private.routable_providers.reason is 'What kind of host it is.';

insert into private.routable_providers (provider_id, reason) values
  ('openai', 'model maker'), ('anthropic', 'model maker'), ('google', 'model maker and cloud'),
  ('mistral', 'model maker'), ('deepseek', 'model maker'), ('x-ai', 'model maker'), ('zai', 'model maker'),
  ('zhipuai', 'model maker'), ('azure', 'cloud'), ('aws', 'cloud'), ('groq', 'inference host'),
  ('together', 'inference host'), ('fireworks', 'inference host');

-- Public knowledge, like the registry: signed-in users may read it; only migrations write it.
create policy "signed-in users read budget-tier tasks" on private.budget_tier_tasks for select to authenticated
  using (true);
create policy "signed-in users read budget models" on private.provider_budget_models for select to authenticated
  using (true);
create policy "signed-in users read model alternatives" on private.model_alternatives for select to authenticated
  using (true);
create policy "signed-in users read routable providers" on private.routable_providers for select to authenticated
  using (true);
revoke all on private.budget_tier_tasks, private.provider_budget_models, private.model_alternatives,
  private.routable_providers from public, anon, authenticated;
grant select on private.budget_tier_tasks, private.provider_budget_models, private.model_alternatives,
  private.routable_providers to authenticated, service_role;

-- The successor a detector proposes for a model: the registry family's successor.
create function private.model_successor(provider_id text, model text) returns text
language sql stable parallel safe set search_path = '' as $$
  select f.successor from private.model_families f
   where f.family = private.model_family(model_successor.provider_id, model_successor.model)
$$;
comment on function private.model_successor(text, text) is
  'The registry successor of a model (its family''s successor), or null.';
revoke all on function private.model_successor(text, text) from public;
grant execute on function private.model_successor(text, text) to authenticated, service_role;
