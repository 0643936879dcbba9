"""Aggregates of the signals customers send besides usage: quality scores (private.usage_feedback) and
what the SDK measures client-side, stored under usage_records.metadata -> 'tokentra' (response format,
output overhead, shared prefix hash and share; functions/models.py). Read per organization over the
same window as _data.py; every cast is guarded, so a malformed value is skipped rather than failing."""

from __future__ import annotations

from typing import Any

__all__ = ["CACHE_TTL_SECONDS", "load_signals"]

# How long a provider keeps a prompt prefix cached after its last use (Anthropic's default; OpenAI
# keeps 5-10 minutes): only a repeat within this gap can be a cache read.
CACHE_TTL_SECONDS = 300

# Per feature and model: calls with a quality score, their mean and spread, and the tokens of all
# successful calls (to reprice them at another model). The feedback semi-join keeps orgs without any cheap.
_QUALITY = """
select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model,
       count(*)::int8 as requests,
       count(f.score)::int8 as scored, avg(f.score)::float8 as quality,
       coalesce(stddev_samp(f.score), 0)::float8 as quality_sd,
       sum(r.input_tokens)::int8 as input_tokens, sum(r.output_tokens)::int8 as output_tokens,
       sum(r.cached_tokens)::int8 as cached_tokens, coalesce(sum(r.cost_usd), 0)::float8 as cost,
       (array_agg(r.request_id order by r.occurred_at desc) filter (where f.score is not null))[1:5] as samples
from public.usage_records r
left join private.usage_feedback f on f.org_id = r.org_id and f.request_id = r.request_id
where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.status = 'success'
  and r.org_id in (select x.org_id from private.usage_feedback x where x.org_id = any(%(orgs)s::uuid[]))
group by 1, 2, 3, 4
"""

# Per feature, model and requested format: successful calls whose answer the SDK measured, their
# visible output tokens, and the tokens outside the compact JSON each answer holds.
_FORMATS = """
select org_id, feature, provider, model, coalesce(response_format, 'text') as response_format,
       count(*)::int8 as measured, sum(visible)::int8 as output_tokens,
       sum(visible * overhead)::float8 as avoidable_tokens,
       (array_agg(request_id order by overhead desc))[1:5] as samples
from (
  select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.request_id,
         r.output_tokens - r.reasoning_tokens as visible,
         r.metadata -> 'tokentra' ->> 'response_format' as response_format,
         case when jsonb_typeof(r.metadata -> 'tokentra' -> 'output_overhead') = 'number'
              then least(greatest((r.metadata -> 'tokentra' ->> 'output_overhead')::float8, 0), 1) end as overhead
  from public.usage_records r
  where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.status = 'success'
    and r.metadata -> 'tokentra' ? 'output_overhead'
) x
where overhead is not null
group by 1, 2, 3, 4, 5
"""

# Per feature, model and shared prefix: how many calls repeated the prefix within the cache's lifetime
# of the previous one (warm: a cache read) and how many started a new run (a cache write), with the
# prefix length (its character share of the prompt times the call's input tokens; the shortest seen).
_PREFIXES = """
select org_id, feature, provider, model, prefix_hash, system_prompt_hash, count(*)::int8 as requests,
       count(*) filter (where gap <= %(ttl)s)::int8 as warm, min(prefix_tokens)::int8 as prefix_tokens,
       sum(input_tokens)::int8 as input_tokens, sum(cached_tokens)::int8 as cached_tokens,
       (array_agg(request_id order by occurred_at desc) filter (where gap <= %(ttl)s))[1:5] as samples
from (
  select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.request_id,
         r.occurred_at,
         r.input_tokens, r.cached_tokens, r.system_prompt_hash, p.prefix_hash,
         floor(p.share * r.input_tokens) as prefix_tokens,
         extract(epoch from r.occurred_at - lag(r.occurred_at) over w) as gap
  from public.usage_records r
  cross join lateral (
    select r.metadata -> 'tokentra' ->> 'prefix_hash' as prefix_hash,
           case when jsonb_typeof(r.metadata -> 'tokentra' -> 'prefix_share') = 'number'
                then least(greatest((r.metadata -> 'tokentra' ->> 'prefix_share')::float8, 0), 1) end as share
  ) p
  where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.status = 'success'
    and r.metadata -> 'tokentra' ? 'prefix_hash' and p.share is not null
  window w as (partition by r.org_id, p.prefix_hash, r.provider, r.canonical_model order by r.occurred_at)
) x
group by 1, 2, 3, 4, 5, 6
having count(*) > 1
"""


def load_signals(conn, args: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per organization of `args["orgs"]` (from `args["since"]`), the three aggregates keyed as OrgData's
    fields; each query runs once for all the organizations (see _data.load_many)."""
    args = {**args, "ttl": CACHE_TTL_SECONDS}
    out: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(o): {"quality": [], "formats": [], "shared_prefixes": []} for o in args["orgs"]
    }
    for field, sql in (("quality", _QUALITY), ("formats", _FORMATS), ("shared_prefixes", _PREFIXES)):
        for r in conn.execute(sql, args).fetchall():
            out[str(r.pop("org_id"))][field].append(r)
    return out
