-- Prompt-cache savings per day and model, last 30 days (UTC), net of what writing the cache cost.
-- Reading cached input costs the cache-read price instead of the input price (the saving); writing it
-- costs the cache-write price instead of the input price (Anthropic charges a premium, 1.25x or 2x the
-- input price; OpenAI none). net_savings_usd = read_savings_usd - write_premium_usd, negative when a
-- cache is written more than it is read. Uses the price each call was actually billed with
-- (usage_records.price_id), so price changes are respected. Response-cache hits (calls answered from a
-- response cache, usually at no provider cost) are counted alongside.
select (u.occurred_at at time zone 'UTC')::date as day,
       u.canonical_model,
       sum(u.cached_tokens) as cache_read_tokens,
       sum(u.cache_write_tokens) as cache_write_tokens,
       round(sum(u.cached_tokens * (p.input_mtok - coalesce(p.cache_read_mtok, p.input_mtok))) / 1000000, 6)
         as read_savings_usd,
       round(sum(u.cache_write_tokens * (coalesce(p.cache_write_mtok, p.input_mtok) - p.input_mtok)) / 1000000, 6)
         as write_premium_usd,
       round(sum(u.cached_tokens * (p.input_mtok - coalesce(p.cache_read_mtok, p.input_mtok))
                 - u.cache_write_tokens * (coalesce(p.cache_write_mtok, p.input_mtok) - p.input_mtok)) / 1000000, 6)
         as net_savings_usd,
       count(*) filter (where u.cache_hit) as response_cache_hits
from analytics.usage_records u
left join analytics.model_prices p on p.price_id = u.price_id
where u.occurred_at >= date_trunc('day', now(), 'UTC') - interval '29 days'
  and (u.cached_tokens > 0 or u.cache_write_tokens > 0 or u.cache_hit)
group by 1, 2
order by 1, 7 desc nulls last;
