-- Output format: answers that carry JSON wrapped in tokens nobody reads. The SDK measures, on the
-- customer's machine and without sending any text, the share of an answer's characters outside the
-- compact JSON it contains (indentation, code fences, "Here is the JSON:" prose), stored under
-- usage_records.metadata -> 'tokentra' -> 'output_overhead'. A feature whose answers carry a large such
-- share pays output tokens that structured output (a strict JSON schema) would not produce.

insert into private.detectors (category, function_name, description) values
  ('output_format_optimization', 'private.detect_output_format_optimization',
   'Output tokens outside the JSON answers carry: structured output would not produce them.');

insert into private.detector_parameters (category, name, value, description) values
  ('output_format_optimization', 'min_measured', 50,
   'Answers the SDK measured that a feature on a model needs.'),
  ('output_format_optimization', 'min_overhead', 0.1,
   'Share of output tokens outside the JSON below which formatting is not worth a change.'),
  ('output_format_optimization', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.');

create function private.detect_output_format_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with w as (
    select * from private.detector_window(p_orgs, p_now)
  ), scopes as (
    -- The window's sums per feature and model with the month factor; counts as numeric, rates are fractions.
    select s.org_id, s.feature, s.provider, s.model, s.requests::numeric as requests, s.errors::numeric as errors,
           s.timeouts::numeric as timeouts, s.retries::numeric as retries, s.cancelled::numeric as cancelled,
           s.input_tokens, s.output_tokens, s.cached_tokens, s.cost, s.error_cost, s.timeout_cost, s.cancelled_cost,
           s.series, (select count(*) from pg_catalog.jsonb_object_keys(s.series)) as days_active, w.days, w.monthly
      from private.detector_scopes(p_orgs, (select min(w.since) from w)) s
      join w on w.org_id = s.org_id
  ), measured as (
    -- Successful calls whose answer the SDK measured: visible output tokens and the share outside the JSON.
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           r.request_id, r.output_tokens - r.reasoning_tokens as visible,
           coalesce(r.metadata -> 'tokentra' ->> 'response_format', 'text') as response_format,
           case when jsonb_typeof(r.metadata -> 'tokentra' -> 'output_overhead') = 'number'
                then least(greatest((r.metadata -> 'tokentra' ->> 'output_overhead')::float8, 0), 1) end as overhead
    from public.usage_records r
    where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.status = 'success'
      and r.metadata -> 'tokentra' ? 'output_overhead'
  ), formats as (
    select m.org_id, m.feature, m.provider, m.model, m.response_format, count(*) as measured,
           sum(m.visible) as output_tokens, sum(m.visible * m.overhead) as avoidable
    from measured m
    where m.overhead is not null
    group by 1, 2, 3, 4, 5
  ), groups as (
    select f.org_id, f.feature, f.provider, f.model, sum(f.measured) as measured, sum(f.output_tokens) as output_tokens,
           sum(f.avoidable) as avoidable, jsonb_object_agg(f.response_format, f.measured) as formats,
           (array_agg(f.response_format order by f.measured desc, f.response_format))[1] as asked
    from formats f
    group by 1, 2, 3, 4
    having sum(f.measured) >= private.detector_param('output_format_optimization', 'min_measured')
       and sum(f.output_tokens) > 0
       and sum(f.avoidable) >= private.detector_param('output_format_optimization', 'min_overhead') * sum(f.output_tokens)
  )
  select g.org_id, 'output_format_optimization', 'feature', g.feature, g.model,
         format('Ask feature %s on %s for compact structured output', g.feature, g.model),
         format('%s%% of the output tokens of feature `%s` on %s lie outside the JSON its answers carry (whitespace, '
                'code fences, prose around it), over %s measured answers; most calls asked for `%s` output.',
                round(g.avoidable / g.output_tokens * 100), g.feature, g.model,
                to_char(g.measured, 'FM999,999,999,990'), g.asked),
         s.cost * s.monthly, s.cost * s.monthly - c.cost_usd * s.monthly,
         'output tokens outside the compact JSON of each measured answer (the SDK''s character share times the '
         'answer''s visible output tokens), at the model''s output price (pricing table); answers the SDK could '
         'not measure (most streams) are left out',
         0.6, 'low', 'low',
         jsonb_build_array(
           case g.asked
             when 'json_object' then 'Move from json_object to json_schema with strict=true, so the model emits only '
                                     'the fields of the schema, compactly.'
             when 'json_schema' then 'Drop pretty-printing and free-text fields from the schema; ask for minified JSON.'
             else 'Ask for structured output (OpenAI: response_format json_schema with strict=true; Anthropic: a '
                  'tool with an input schema) instead of asking for JSON in the prompt: no prose, no code fences.'
           end,
           'Check on a sample that the parsed results are unchanged.'),
         jsonb_build_object('requests', g.measured, 'cost_per_request', s.cost / greatest(s.requests, 1),
                            'model', g.model, 'provider', g.provider,
                            'overhead_share', round((g.avoidable / g.output_tokens)::numeric, 4),
                            'avoidable_output_tokens', round(g.avoidable), 'output_tokens', g.output_tokens,
                            'requested_formats', g.formats, 'series', s.series,
                            'sample_request_ids', to_jsonb(array(
                              select m.request_id from measured m
                              where m.org_id = g.org_id and m.feature = g.feature and m.provider = g.provider
                                and m.model = g.model and m.overhead is not null
                              order by m.overhead desc limit 5))),
         jsonb_build_object('conditions', jsonb_build_object('feature', g.feature, 'model', g.model),
                            'action', jsonb_build_object('type', 'set_response_format',
                                                         'response_format', 'json_schema', 'strict', true))
  from groups g
  join scopes s
    on s.org_id = g.org_id and s.feature = g.feature and s.provider = g.provider and s.model = g.model
  cross join lateral private.usage_cost(g.provider, g.model, now(), 0, round(g.avoidable)::bigint, 0, 0, 0) c
  where c.cost_usd * s.monthly >= private.detector_param('output_format_optimization', 'min_monthly_savings')
    and c.cost_usd < s.cost
$$;
comment on function private.detect_output_format_optimization(uuid[], timestamptz) is
  'Per feature and model, SDK-measured answers whose output carries min_overhead or more outside the compact '
  'JSON: those output tokens at the model''s output price, per month.';
revoke all on function private.detect_output_format_optimization(uuid[], timestamptz) from public;
grant execute on function private.detect_output_format_optimization(uuid[], timestamptz) to service_role;

