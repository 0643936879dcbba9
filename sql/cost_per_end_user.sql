-- Cost per end user (metadata.user_id sent with each call), last 30 days (UTC), most expensive first,
-- with each user's share of the spend that carries a user id.
select end_user_id,
       sum(cost_usd) as cost_usd,
       sum(requests) as calls,
       sum(errors) as errors,
       round(100 * sum(cost_usd) / nullif(sum(sum(cost_usd)) over (), 0), 2) as share_pct
from analytics.end_user_daily
where bucket >= date_trunc('day', now(), 'UTC') - interval '29 days'
group by end_user_id
order by cost_usd desc, end_user_id
limit 100;
