-- A reconciliation_drift rule's condition is checked when it is written, not only by the API: members with
-- the alerts permission may write alert_rules directly, and one unreadable condition would otherwise make
-- the drift evaluation fail at its casts for every organization's rules.

-- The first thing wrong with a reconciliation_drift condition, as "condition.<key>: <reason>", or null.
-- JSON null stands for the default, as the evaluation reads it.
create function private.reconciliation_drift_condition_problem(c jsonb) returns text
language sql stable set search_path = '' as $$
  select case
    when jsonb_typeof(c) is distinct from 'object' then 'condition: must be an object'
    when exists (select 1 from jsonb_object_keys(c) k
                  where k not in ('threshold_pct', 'min_gap_usd', 'window_days', 'provider', 'canonical_model',
                                  'causes', 'severity'))
      then format('condition.%s: unknown key',
                  (select k from jsonb_object_keys(c) k
                    where k not in ('threshold_pct', 'min_gap_usd', 'window_days', 'provider', 'canonical_model',
                                    'causes', 'severity') order by k limit 1))
    when coalesce(jsonb_typeof(c -> 'threshold_pct'), 'null') not in ('null', 'number')
      or (jsonb_typeof(c -> 'threshold_pct') = 'number'
          and not ((c ->> 'threshold_pct')::numeric > 0 and (c ->> 'threshold_pct')::numeric <= 1000))
      then 'condition.threshold_pct: must be a number greater than 0 and at most 1000'
    when coalesce(jsonb_typeof(c -> 'min_gap_usd'), 'null') not in ('null', 'number')
      or (jsonb_typeof(c -> 'min_gap_usd') = 'number' and (c ->> 'min_gap_usd')::numeric < 0)
      then 'condition.min_gap_usd: must be a number of at least 0'
    when coalesce(jsonb_typeof(c -> 'window_days'), 'null') not in ('null', 'number')
      or (jsonb_typeof(c -> 'window_days') = 'number'
          and not ((c ->> 'window_days')::numeric between 1 and 400
                   and (c ->> 'window_days')::numeric = trunc((c ->> 'window_days')::numeric)))
      then 'condition.window_days: must be a whole number from 1 to 400'
    when coalesce(jsonb_typeof(c -> 'provider'), 'null') <> 'null'
     and (c -> 'provider') not in ('"openai"'::jsonb, '"anthropic"'::jsonb)
      then 'condition.provider: must be openai or anthropic'
    when coalesce(jsonb_typeof(c -> 'canonical_model'), 'null') not in ('null', 'string')
      or btrim(coalesce(c ->> 'canonical_model', 'x')) = ''
      then 'condition.canonical_model: must be a non-empty string'
    when coalesce(jsonb_typeof(c -> 'causes'), 'null') not in ('null', 'array')
      or (jsonb_typeof(c -> 'causes') = 'array'
          and (jsonb_array_length(c -> 'causes') not between 1 and 10
               or exists (select 1 from jsonb_array_elements(c -> 'causes') e
                           where jsonb_typeof(e) <> 'string'
                              or e #>> '{}' not in (select k.cause from private.reconciliation_cause_kinds k))))
      then 'condition.causes: must be a list of 1 to 10 known causes'
    when coalesce(jsonb_typeof(c -> 'severity'), 'null') <> 'null'
     and (c -> 'severity') not in ('"info"'::jsonb, '"warning"'::jsonb, '"critical"'::jsonb)
      then 'condition.severity: must be info, warning or critical'
  end
$$;
comment on function private.reconciliation_drift_condition_problem(jsonb) is
  'The first problem of a reconciliation_drift rule''s condition ("condition.<key>: <reason>"), or null.';

create function private.check_alert_rule_condition() returns trigger
language plpgsql set search_path = '' as $$
declare
  problem text;
begin
  if new.type = 'reconciliation_drift' then
    problem := private.reconciliation_drift_condition_problem(new.condition);
    if problem is not null then
      raise exception '%', problem using errcode = '22023';
    end if;
  end if;
  return new;
end
$$;
comment on function private.check_alert_rule_condition() is
  'Refuse an alert rule whose condition its evaluation could not read (22023, naming the key).';

create trigger check_condition before insert or update of type, condition on public.alert_rules
  for each row execute function private.check_alert_rule_condition();
