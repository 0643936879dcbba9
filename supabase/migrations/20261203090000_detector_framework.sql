-- The recommendation detectors as SQL: one set-returning function per category, all returning one
-- candidate type, registered in a table the worker reads, with their thresholds as named parameters.
-- The worker only orchestrates: it calls each enabled detector once per chunk of organizations and
-- writes what comes back (fingerprint, priority, lifecycle). An analyst runs a detector by hand with
--   select * from private.detect_<category>(array['<org id>']::uuid[], now());
--
-- Each detector: private.detect_<category>(p_orgs uuid[], p_now timestamptz)
--   returns setof private.recommendation_candidate
-- one statement for many organizations; its window is the 30 days before p_now (from UTC midnight,
-- private.detector_window), its costs scaled to a month by the days that window really covers.

-- ---------------------------------------------------------------- the candidate
create type private.recommendation_candidate as (
  org_id uuid, category text, scope_type text, scope_value text, key text,
  title text, description text, current_monthly_cost numeric, projected_monthly_cost numeric,
  savings_method text, confidence numeric, risk text, effort text,
  implementation_steps jsonb, evidence jsonb, suggested_rule jsonb);
comment on type private.recommendation_candidate is
  'One finding of a detector: scope (scope_type = scope_value), key (what makes it unique in its category and '
  'scope; the fingerprint is category:scope_type=scope_value:key), monthly cost now and projected, how the '
  'savings were computed, confidence 0..1, risk and effort (low/medium/high), steps (json array of text), '
  'evidence (json object) and an optional routing rule (json object).';

-- ---------------------------------------------------------------- the registry of detectors
create table private.detectors (
  category text primary key constraint category_is_snake_case check (category ~ '^[a-z][a-z0-9_]*$'),
  function_name text not null constraint function_name_is_a_private_detector
    check (function_name ~ '^private\.detect_[a-z0-9_]+$'),
  enabled boolean not null default true,
  description text not null constraint description_is_not_blank check (btrim(description) <> '')
);
alter table private.detectors enable row level security;
comment on table private.detectors is
  'The recommendation detectors the worker runs: one SQL function per category, '
  'called as function_name(p_orgs uuid[], p_now timestamptz) returning setof private.recommendation_candidate.';
comment on column private.detectors.category is 'Recommendation category the detector finds (recommendations.category).';
comment on column private.detectors.function_name is
  'Schema-qualified name of the detector function, private.detect_<category>.';
comment on column private.detectors.enabled is 'Whether the recommendations job runs this detector.';
comment on column private.detectors.description is 'What pattern the detector looks for, in one or two sentences.';

create table private.detector_parameters (
  category text not null references private.detectors (category) on delete cascade,
  name text not null constraint name_is_snake_case check (name ~ '^[a-z][a-z0-9_]*$'),
  value numeric not null,
  description text not null constraint description_is_not_blank check (btrim(description) <> ''),
  primary key (category, name)
);
alter table private.detector_parameters enable row level security;
comment on table private.detector_parameters is
  'Thresholds and constants of each detector, by name: change a value here to tune a detector without a release.';
comment on column private.detector_parameters.category is 'The detector (private.detectors.category) the parameter belongs to.';
comment on column private.detector_parameters.name is 'Parameter name, as the detector reads it with private.detector_param.';
comment on column private.detector_parameters.value is 'Parameter value, in the unit its description names.';
comment on column private.detector_parameters.description is 'What the parameter means and its unit.';

revoke all on private.detectors, private.detector_parameters from public, anon, authenticated;
grant select on private.detectors, private.detector_parameters to service_role;

-- ---------------------------------------------------------------- parameters
-- PL/pgSQL so that a missing parameter is an error naming it, not a silent null threshold (a null
-- comparison would switch the rule off without a word). Detectors call it once per statement.
create function private.detector_param(p_category text, p_name text) returns numeric
language plpgsql stable set search_path = '' as $$
declare
  v numeric;
begin
  select p.value into v from private.detector_parameters p
   where p.category = detector_param.p_category and p.name = detector_param.p_name;
  if not found then
    raise exception 'detector parameter %.% is not defined', p_category, p_name
      using errcode = 'no_data_found',
            hint = 'insert it into private.detector_parameters (category, name, value, description)';
  end if;
  return v;
end
$$;
comment on function private.detector_param(text, text) is
  'The value of one detector parameter (private.detector_parameters); raises an error naming it when missing.';
revoke all on function private.detector_param(text, text) from public;
grant execute on function private.detector_param(text, text) to service_role;

-- ---------------------------------------------------------------- the window
-- Whole UTC days, so the daily rollups and the raw per-pattern reads cover the same window. `days` is
-- the part of it the organization's history really covers (from its first day with usage, at least one
-- day), and `monthly` scales a window's sum to 30 days: a week-old organization's week is not a month.
create function private.detector_window(p_orgs uuid[], p_now timestamptz)
returns table (org_id uuid, since timestamptz, days numeric, monthly numeric)
language sql stable set search_path = '' as $$
  with w as (
    select (date_trunc('day', (p_now - interval '30 days') at time zone 'UTC') at time zone 'UTC') as since
  ), first_day as (
    select u.org_id, min(u.bucket) as first_at
      from analytics.usage_daily u, w
     where u.org_id = any (p_orgs) and u.bucket >= w.since
     group by u.org_id
  )
  select o.org_id, w.since, d.days, 30 / d.days
    from unnest(p_orgs) o (org_id)
   cross join w
    left join first_day f on f.org_id = o.org_id
   cross join lateral (
     select greatest(extract(epoch from p_now - greatest(coalesce(f.first_at, p_now), w.since)) / 86400, 1.0)
            as days) d
$$;
comment on function private.detector_window(uuid[], timestamptz) is
  'Per organization: the detectors'' window start (UTC midnight 30 days before p_now), the days of it the '
  'organization''s usage covers (at least 1) and the factor 30/days that scales the window to a month.';
revoke all on function private.detector_window(uuid[], timestamptz) from public;
grant execute on function private.detector_window(uuid[], timestamptz) to service_role;
