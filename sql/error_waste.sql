-- Error waste per day and model, last 30 days (UTC): money and tokens spent on calls that did not
-- succeed (errors, timeouts, rate limits, cancellations), the retries the SDK made, and the error rate.
-- Grouped by canonical_model: a success is stored under the snapshot the response names
-- (gpt-4o-2024-08-06) and a failure under the model requested (gpt-4o); both are the same model, so
-- the error rate is failures over all of its calls.
select (bucket at time zone 'UTC')::date as day,
       canonical_model,
       sum(cost_usd) filter (where status <> 'success') as wasted_usd,
       sum(input_tokens + output_tokens) filter (where status <> 'success') as wasted_tokens,
       sum(errors) as failed_calls,
       sum(requests) as calls,
       sum(timeouts) as timeouts,
       sum(rate_limited) as rate_limited,
       sum(retries) as retries,
       round(100.0 * sum(errors) / nullif(sum(requests), 0), 2) as error_rate_pct
from analytics.usage_daily
where bucket >= date_trunc('day', now(), 'UTC') - interval '29 days'
group by 1, 2
having sum(errors) > 0 or sum(retries) > 0
order by 1, 3 desc nulls last;
