-- Prompt-cache savings per day and model, last 30 days (UTC): what the cached input tokens would have
-- cost at the model's input price, minus what they cost at its cache-read price. Uses the price each
-- call was actually billed with (usage_records.price_id), so price changes are respected. Response
-- cache hits (cache_hit) are counted alongside: those calls cost what the provider billed, usually 0.
select (u.occurred_at at time zone 'UTC')::date as day,
       u.model,
       sum(u.cached_tokens) as cached_tokens,
       round(sum(u.cached_tokens * (p.input_mtok - coalesce(p.cache_read_mtok, p.input_mtok))) / 1000000, 6)
         as saved_usd,
       count(*) filter (where u.cache_hit) as response_cache_hits
from analytics.usage_records u
left join analytics.model_prices p on p.price_id = u.price_id
where u.occurred_at >= date_trunc('day', now(), 'UTC') - interval '29 days'
  and (u.cached_tokens > 0 or u.cache_hit)
group by 1, 2
order by 1, 4 desc nulls last;
