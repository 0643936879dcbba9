-- io_ratio_optimization: long answers to short prompts, with a heavy tail of output. Savings: the output
-- tokens of successful calls beyond the scope's median answer length, at the model's output price today,
-- scaled to a month; the suggested cap is 1.2 times the median.
insert into private.detectors (category, function_name, description) values
  ('io_ratio_optimization', 'private.detect_io_ratio_optimization',
   'Features (not embeddings) answering with at least min_io_ratio output tokens per input token whose answers '
   'beyond the median length carry at least min_excess_share of the output.');
insert into private.detector_parameters (category, name, value, description) values
  ('io_ratio_optimization', 'min_monthly_savings', 1, 'Smallest saving worth a recommendation, USD a month.'),
  ('io_ratio_optimization', 'min_io_ratio', 1.0, 'Output tokens per input token of the scope''s successful calls.'),
  ('io_ratio_optimization', 'min_excess_share', 0.3,
   'Share (0..1) of output tokens beyond each call''s median answer length.'),
  ('io_ratio_optimization', 'max_tokens_over_median', 1.2, 'Suggested max_tokens as a multiple of the median answer.');

create function private.detect_io_ratio_optimization(p_orgs uuid[], p_now timestamptz)
returns setof private.recommendation_candidate
language sql stable set search_path = '' as $$
  with p as (
    select private.detector_param('io_ratio_optimization', 'min_monthly_savings') as min_savings,
           private.detector_param('io_ratio_optimization', 'min_io_ratio') as min_ratio,
           private.detector_param('io_ratio_optimization', 'min_excess_share') as min_excess,
           private.detector_param('io_ratio_optimization', 'max_tokens_over_median') as over_median
  ), w as (
    select * from private.detector_window(p_orgs, p_now)
  ), calls as (
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           r.input_tokens, r.output_tokens
      from public.usage_records r
     where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.status = 'success'
       and r.canonical_model not like 'text-embedding%'
  ), medians as (
    select c.org_id, c.feature, c.provider, c.model,
           percentile_disc(0.5) within group (order by c.output_tokens) as p50_output,
           sum(c.input_tokens) as input_tokens, sum(c.output_tokens) as output_tokens, count(*) as requests
      from calls c
     group by 1, 2, 3, 4
    having sum(c.input_tokens) > 0 and sum(c.output_tokens)::numeric / sum(c.input_tokens) >= (select p.min_ratio from p)
  ), shapes as (
    select m.org_id, m.feature, m.provider, m.model, m.p50_output, m.input_tokens, m.output_tokens, m.requests,
           m.output_tokens::numeric / m.input_tokens as ratio,
           sum(greatest(c.output_tokens - m.p50_output, 0))::bigint as excess_output
      from medians m
      join calls c on c.org_id = m.org_id and c.feature = m.feature and c.provider = m.provider and c.model = m.model
     group by 1, 2, 3, 4, 5, 6, 7, 8
  ), found as (
    select x.*, w.monthly, s.cost * w.monthly as current, s.series, o.cost_usd * w.monthly as wasted
      from shapes x
      join w on w.org_id = x.org_id
     cross join p
     cross join lateral private.usage_cost(x.provider, x.model, p_now, 0, x.excess_output, 0, 0, 0) o
      left join lateral (select s.cost, s.series from private.detector_scopes(array[x.org_id], w.since) s
                          where s.feature = x.feature and s.provider = x.provider and s.model = x.model) s on true
     where x.excess_output >= p.min_excess * x.output_tokens and o.cost_usd * w.monthly >= p.min_savings
  )
  select f.org_id, 'io_ratio_optimization', 'feature', f.feature, f.model,
         format('Cap the output of feature %s on %s near its median length', f.feature, f.model),
         format('Calls of feature %s return %s output tokens per input token; the longest half carry %s tokens '
                'beyond the median answer (%s tokens).', f.feature, round(f.ratio, 1), private.fmt_count(f.excess_output),
                f.p50_output),
         coalesce(f.current, 0), coalesce(f.current, 0) - f.wasted,
         'output tokens beyond the feature''s median answer length, at the output price (pricing table)',
         0.5, 'medium', 'low',
         jsonb_build_array(format('Set max_tokens near %s for this feature.', floor(f.p50_output * p.over_median)),
                           'Ask for concise answers in the prompt; check answer quality on a sample.'),
         jsonb_build_object('requests', f.requests,
                            'cost_per_request', coalesce(f.current, 0) / f.monthly / greatest(f.requests, 1),
                            'model', f.model, 'provider', f.provider, 'io_ratio', round(f.ratio, 3),
                            'median_output_tokens', f.p50_output, 'excess_output_tokens', f.excess_output,
                            'series', coalesce(f.series, '{}'::jsonb), 'sample_request_ids', '[]'::jsonb),
         jsonb_build_object('conditions', jsonb_build_object('feature', f.feature, 'model', f.model),
                            'action', jsonb_build_object('type', 'set_max_tokens',
                                                         'max_tokens', floor(f.p50_output * p.over_median)))
    from found f cross join p
$$;
comment on function private.detect_io_ratio_optimization(uuid[], timestamptz) is
  'Recommendations to cap answer length where output tokens far exceed input and the median answer.';
revoke all on function private.detect_io_ratio_optimization(uuid[], timestamptz) from public;
grant execute on function private.detect_io_ratio_optimization(uuid[], timestamptz) to service_role;
