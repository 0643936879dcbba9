-- Cost per feature per day, last 30 days (UTC), with calls, errors and tokens.
-- Reads the daily rollups (exact and fresh: they include calls stored a moment ago).
select (bucket at time zone 'UTC')::date as day,
       coalesce(feature, '(untagged)') as feature,
       sum(cost_usd) as cost_usd,
       sum(requests) as calls,
       sum(errors) as errors,
       sum(input_tokens) as input_tokens,
       sum(output_tokens) as output_tokens
from analytics.usage_daily
where bucket >= date_trunc('day', now(), 'UTC') - interval '29 days'
group by 1, 2
order by 1, 3 desc;
