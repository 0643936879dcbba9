-- Quality-cost Pareto: per feature, the models it uses, each with its cost per call and the mean quality
-- score customers sent for its calls (private.usage_feedback). A model whose calls another model would
-- serve for less, at a quality we are 95% sure is at most quality_tolerance lower, is off the frontier:
-- move its calls to the cheapest such model. The evidence carries every scored model as a
-- (cost per call, quality) point, frontier marked, for a chart.

insert into private.detectors (category, function_name, description) values
  ('quality_cost_pareto', 'private.detect_quality_cost_pareto',
   'A model another serves for less at the same quality (customers'' feedback scores).');

insert into private.detector_parameters (category, name, value, description) values
  ('quality_cost_pareto', 'quality_tolerance', 0.02,
   'The most mean quality (0..1 scale) a cheaper model may lose, at the upper confidence bound.'),
  ('quality_cost_pareto', 'min_scored', 30,
   'Scored calls a model needs before its mean quality is compared.'),
  ('quality_cost_pareto', 'z_one_sided', 1.645,
   'Normal quantile of the one-sided bound on the quality drop (1.645: 95%).'),
  ('quality_cost_pareto', 'max_projected_share', 0.9,
   'The move must cost at most this share of today''s cost: saving under 10% is not worth a model change.'),
  ('quality_cost_pareto', 'confident_scored', 200,
   'Scored calls on both models above which the finding''s confidence is higher.'),
  ('quality_cost_pareto', 'min_monthly_savings', 1,
   'USD per month below which the finding is noise.');

create function private.detect_quality_cost_pareto(p_orgs uuid[], p_now timestamptz)
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
  ), q as (
    -- Per feature and model: calls with a quality score, their mean and spread, and the tokens of all
    -- successful calls (to reprice them at another model). The semi-join keeps orgs without feedback cheap.
    select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
           count(*) as requests, count(f.score) as scored, avg(f.score) as quality,
           coalesce(stddev_samp(f.score), 0) as quality_sd,
           sum(r.input_tokens) as input_tokens, sum(r.output_tokens) as output_tokens,
           sum(r.cached_tokens) as cached_tokens, coalesce(sum(r.cost_usd), 0) as cost,
           (array_agg(r.request_id order by r.occurred_at desc) filter (where f.score is not null))[1:5] as samples
    from public.usage_records r
    -- A lookup by key per call: the planner, misjudging a freshly filled feedback table, would otherwise
    -- join every call against every score.
    left join lateral (select x.score from private.usage_feedback x
                       where x.org_id = r.org_id and x.request_id = r.request_id) f on true
    where r.org_id = any (p_orgs) and r.occurred_at >= (select min(w.since) from w) and r.status = 'success'
      and r.org_id in (select x.org_id from private.usage_feedback x where x.org_id = any (p_orgs))
    group by 1, 2, 3, 4
  ), scored as (
    select q.*, q.cost / greatest(q.requests, 1) as cpr, count(*) over (partition by q.org_id, q.feature) as models
    from q
    where q.scored >= private.detector_param('quality_cost_pareto', 'min_scored') and q.quality is not null
  ), points as (
    select p.*, not exists (
             select from scored o
             where o.org_id = p.org_id and o.feature = p.feature and (o.provider, o.model) <> (p.provider, p.model)
               and o.cpr <= p.cpr and round(o.quality, 4) >= round(p.quality, 4)
               and (o.cpr < p.cpr or round(o.quality, 4) > round(p.quality, 4))) as on_frontier
    from scored p
    where p.models >= 2
  ), frontier as (
    select p.org_id, p.feature,
           jsonb_agg(jsonb_build_object('model', p.model, 'provider', p.provider, 'cost_per_request', p.cpr,
                                        'quality', round(p.quality, 4), 'scored_requests', p.scored,
                                        'on_frontier', p.on_frontier) order by p.cpr) as points
    from points p
    group by 1, 2
  ), moves as (
    -- Each model against every other of its feature within the tolerance, its tokens repriced there.
    select distinct on (cur.org_id, cur.feature, cur.provider, cur.model)
           cur.org_id, cur.feature, cur.provider, cur.model, cur.requests, cur.scored, cur.quality, cur.cost,
           cur.samples, cand.provider as target_provider, cand.model as target_model, cand.scored as target_scored,
           cand.quality as target_quality, x.bound, c.cost_usd as at
    from points cur
    join points cand on cand.org_id = cur.org_id and cand.feature = cur.feature
                    and (cand.provider, cand.model) <> (cur.provider, cur.model)
    cross join lateral (
      select cur.quality - cand.quality + private.detector_param('quality_cost_pareto', 'z_one_sided')
             * sqrt(cur.quality_sd ^ 2 / cur.scored + cand.quality_sd ^ 2 / cand.scored) as bound) x
    cross join lateral private.usage_cost(cand.provider, cand.model, now(), cur.input_tokens::bigint,
                                          cur.output_tokens::bigint, cur.cached_tokens::bigint, 0, 0) c
    where x.bound <= private.detector_param('quality_cost_pareto', 'quality_tolerance') and c.cost_usd is not null
    order by cur.org_id, cur.feature, cur.provider, cur.model, c.cost_usd
  )
  select m.org_id, 'quality_cost_pareto', 'feature', m.feature, m.model,
         format('Move feature %s from %s to %s: same quality, %s%% cheaper', m.feature, m.model, m.target_model,
                round((1 - v.projected / v.current) * 100)),
         format('Feature `%s` scored %s on %s (%s scored calls) and %s on %s (%s scored calls): %s of %s, within '
                'the %s tolerance at 95%% confidence. The %s calls on %s would cost %s%% as much on %s.',
                m.feature, to_char(m.quality, 'FM0.000'), m.model, to_char(m.scored, 'FM999,999,999,990'),
                to_char(m.target_quality, 'FM0.000'), m.target_model, to_char(m.target_scored, 'FM999,999,999,990'),
                case when m.quality > m.target_quality then 'a drop' else 'a gain' end,
                to_char(abs(m.quality - m.target_quality), 'FM0.000'),
                private.detector_param('quality_cost_pareto', 'quality_tolerance'),
                to_char(m.requests, 'FM999,999,999,990'), m.model, round(v.projected / v.current * 100),
                m.target_model),
         v.current, v.projected,
         format('the successful calls'' input, cached and output tokens on %s repriced at %s''s listed price '
                '(pricing table); assumes the same token counts on both models and that the scored calls '
                'represent the feature''s traffic', m.model, m.target_model),
         case when least(m.scored, m.target_scored) >= private.detector_param('quality_cost_pareto', 'confident_scored')
              then 0.7 else 0.55 end,
         'medium', 'low',
         jsonb_build_array(
           format('Route feature %s from %s to %s on a traffic share first (apply creates the rule; pass '
                  'traffic_share).', m.feature, m.model, m.target_model),
           'Keep sending quality feedback; the next run compares the two models on the new traffic.',
           'Go to 100% once the quality on the share stays within the tolerance.'),
         jsonb_build_object('requests', m.requests, 'cost_per_request', m.cost / greatest(m.requests, 1),
                            'model', m.model, 'provider', m.provider, 'target_model', m.target_model,
                            'target_provider', m.target_provider, 'quality', round(m.quality, 4),
                            'target_quality', round(m.target_quality, 4),
                            'quality_tolerance', private.detector_param('quality_cost_pareto', 'quality_tolerance'),
                            'quality_drop_upper_95', round(m.bound::numeric, 4), 'scored_requests', m.scored,
                            'target_scored_requests', m.target_scored, 'frontier', f.points,
                            'series', coalesce(s.series, '{}'::jsonb),
                            'sample_request_ids', to_jsonb(coalesce(m.samples, '{}'::text[]))),
         jsonb_build_object('conditions', jsonb_build_object('feature', m.feature, 'model', m.model),
                            'action', jsonb_build_object('type', 'route_to_model', 'provider', m.target_provider,
                                                         'model', m.target_model))
  from moves m
  join w o on o.org_id = m.org_id
  join frontier f on f.org_id = m.org_id and f.feature = m.feature
  left join scopes s on s.org_id = m.org_id and s.feature = m.feature and s.provider = m.provider and s.model = m.model
  cross join lateral (select m.cost * o.monthly as current, m.at * o.monthly as projected) v
  where v.current - v.projected >= private.detector_param('quality_cost_pareto', 'min_monthly_savings')
    and v.projected <= private.detector_param('quality_cost_pareto', 'max_projected_share') * v.current
$$;
comment on function private.detect_quality_cost_pareto(uuid[], timestamptz) is
  'Per feature, models another model would serve for less at a quality at most quality_tolerance lower (upper '
  'one-sided bound): the calls'' tokens repriced at the cheapest such model, per month; the frontier as evidence.';
revoke all on function private.detect_quality_cost_pareto(uuid[], timestamptz) from public;
grant execute on function private.detect_quality_cost_pareto(uuid[], timestamptz) to service_role;

