-- Quality per model and task category for one organization: the registry's prior, updated by the
-- organization's own feedback scores (private.usage_feedback) on calls of that model and category.
-- The update is a beta-binomial style mean: the prior counts as PRIOR_WEIGHT observations, so ten
-- scores move it a third of the way and a few hundred make it the organization's own figure.

-- The task category of a task type: the SDK's classifier types, grouped as the registry's priors are.
create function private.task_category(task_type text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
    when task_type in ('greeting', 'faq', 'clarification', 'chitchat', 'instruction_following', 'roleplay',
                       'customer_support', 'information_lookup') then 'chat'
    when task_type in ('summarization', 'expansion', 'translation', 'rewriting', 'paraphrasing', 'formatting',
                       'proofreading', 'content_generation') then 'content'
    when task_type in ('sentiment', 'classification', 'entity_extraction', 'comparison', 'data_extraction',
                       'pattern_recognition', 'anomaly_detection', 'clustering') then 'analysis'
    when task_type in ('code_generation', 'code_review', 'debugging', 'code_explanation', 'refactoring',
                       'test_generation', 'documentation', 'code_completion') then 'coding'
    when task_type in ('math', 'logic', 'planning', 'decision_support', 'problem_solving', 'causal_reasoning',
                       'hypothesis_generation') then 'reasoning'
    when task_type in ('copywriting', 'story_generation', 'brainstorming', 'ideation', 'poetry',
                       'dialogue_writing', 'marketing_copy', 'creative_editing') then 'creative'
    when task_type in ('chat', 'content', 'analysis', 'coding', 'reasoning', 'creative', 'embedding',
                       'multimodal') then task_type
  end
$$;
comment on function private.task_category(text) is
  'Registry category (chat, content, analysis, coding, reasoning, creative) of an SDK task type; null if unknown.';
grant execute on function private.task_category(text) to authenticated, service_role;

-- Feedback per (model, category) of one organization since a time, with the prior blended in.
-- Models with feedback but no prior (no known family) start from the category's mean prior of their
-- tier-less neighbours: 0.75, a middling score, with the same weight.
create function private.model_quality(org uuid, since timestamptz default now() - interval '30 days')
returns table (provider text, model text, category text, prior numeric, prior_source text,
               feedback_count bigint, feedback_mean numeric, score numeric)
language sql stable set search_path = '' as $$
  with prior_weight as (select 20::numeric as w),
  feedback as (
    select u.provider, u.model, private.task_category(u.task_type) as category,
           count(*) as n, sum(f.score) as total
      from private.usage_feedback f
      join private.usage_request_ids r on r.org_id = f.org_id and r.request_id = f.request_id
      join public.usage_records u on u.org_id = r.org_id and u.occurred_at = r.occurred_at
                                 and u.request_id = r.request_id
     where f.org_id = model_quality.org and r.occurred_at >= model_quality.since
       and private.task_category(u.task_type) is not null
     group by 1, 2, 3
  )
  select fb.provider, fb.model, fb.category, coalesce(q.score, 0.75), coalesce(q.source, 'default'),
         fb.n, round(fb.total / fb.n, 4),
         round((coalesce(q.score, 0.75) * (select w from prior_weight) + fb.total)
               / ((select w from prior_weight) + fb.n), 4)
    from feedback fb
    left join private.model_quality_priors q
      on q.family = private.model_family(fb.provider, fb.model) and q.category = fb.category
$$;
comment on function private.model_quality(uuid, timestamptz) is
  'An organization''s quality per (provider, model, category): prior (weight 20), feedback count and mean since '
  '`since`, and the blended score = (prior*20 + sum of scores) / (20 + count).';
revoke all on function private.model_quality(uuid, timestamptz) from public;
grant execute on function private.model_quality(uuid, timestamptz) to service_role;
