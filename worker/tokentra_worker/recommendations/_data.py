"""The aggregates the detectors read: 30 days of rollups per feature, provider and model (the canonical
model, so a snapshot's calls and its bare name's are one scope; with a daily series for the evidence
charts), and per-pattern aggregates of the raw rows (task types, repeated prompts) over the index of 20261122004200."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tokentra_worker.recommendations._signals import load_signals

__all__ = ["OrgData", "load", "load_many"]

WINDOW_DAYS = 30
DEDUP_SECONDS = 60
SUMS = (
    "requests",
    "errors",
    "timeouts",
    "retries",
    "rate_limited",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost",
    "error_cost",
    "timeout_cost",
    "cancelled",
    "cancelled_cost",
    "rate_limited_calls",
    "rate_limited_cost",
)

_SCOPES = """
select u.org_id, coalesce(u.feature, '(none)') as feature, u.provider, u.canonical_model as model,
       (u.bucket at time zone 'UTC')::date as day,
       sum(u.requests)::int8 as requests, sum(u.errors) filter (where u.status = 'error')::int8 as errors,
       sum(u.timeouts)::int8 as timeouts, sum(u.retries)::int8 as retries, sum(u.rate_limited)::int8 as
         rate_limited,
       sum(u.input_tokens)::int8 as input_tokens, sum(u.output_tokens)::int8 as output_tokens,
       sum(u.cached_tokens)::int8 as cached_tokens, sum(u.cost_usd)::float8 as cost,
       coalesce(sum(u.cost_usd) filter (where u.status = 'error'), 0)::float8 as error_cost,
       coalesce(sum(u.cost_usd) filter (where u.status = 'timeout'), 0)::float8 as timeout_cost,
       coalesce(sum(u.requests) filter (where u.status = 'cancelled'), 0)::int8 as cancelled,
       coalesce(sum(u.cost_usd) filter (where u.status = 'cancelled'), 0)::float8 as cancelled_cost,
       coalesce(sum(u.requests) filter (where u.status = 'rate_limited'), 0)::int8 as rate_limited_calls,
       coalesce(sum(u.cost_usd) filter (where u.status = 'rate_limited'), 0)::float8 as rate_limited_cost
from analytics.usage_daily u
where u.org_id = any(%(orgs)s::uuid[]) and u.bucket >= %(since)s
group by 1, 2, 3, 4, 5
"""

_HOURS = """
select u.org_id, coalesce(u.feature, '(none)') as feature, u.provider, u.canonical_model as model,
       extract(hour from u.bucket at time zone 'UTC')::int as hour, sum(u.requests)::int8 as requests
from analytics.usage_hourly u
where u.org_id = any(%(orgs)s::uuid[]) and u.bucket >= %(since)s
group by 1, 2, 3, 4, 5
"""

_USERS = """
select u.org_id, u.end_user_id, (u.bucket at time zone 'UTC')::date as day,
       sum(u.requests)::float8 as requests, sum(u.cost_usd)::float8 as cost
from analytics.end_user_daily u
where u.org_id = any(%(orgs)s::uuid[]) and u.bucket >= %(since)s
group by 1, 2, 3
"""

_PREFIXES = """
select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.system_prompt_hash,
       count(*)::int8 as requests, min(r.input_tokens)::int8 as min_input, sum(r.input_tokens)::int8 as
         input_tokens,
       sum(r.output_tokens)::int8 as output_tokens, sum(r.cached_tokens)::int8 as cached_tokens
from public.usage_records r
where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.system_prompt_hash is not null
group by 1, 2, 3, 4, 5
having count(*) > 1
"""

_SHAPES = """
with rows as (
  select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.input_tokens,
         r.output_tokens, r.cached_tokens
  from public.usage_records r
  where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.status = 'success'
), medians as (
  select org_id, feature, provider, model,
         percentile_disc(0.5) within group (order by input_tokens) as p50_input,
         percentile_disc(0.5) within group (order by output_tokens) as p50_output
  from rows group by 1, 2, 3, 4
)
select x.org_id, x.feature, x.provider, x.model, count(*)::int8 as requests, m.p50_input, m.p50_output,
       sum(x.input_tokens)::int8 as input_tokens, sum(x.output_tokens)::int8 as output_tokens,
       sum(x.cached_tokens)::int8 as cached_tokens,
       sum(greatest(x.output_tokens - m.p50_output, 0))::int8 as excess_output
from rows x join medians m using (org_id, feature, provider, model)
group by 1, 2, 3, 4, 6, 7
"""

_TASKS = """
select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.task_type,
       count(*)::int8 as requests,
       sum(r.input_tokens)::int8 as input_tokens, sum(r.output_tokens)::int8 as output_tokens,
       sum(r.cached_tokens)::int8 as cached_tokens, sum(r.cost_usd)::float8 as cost,
       (array_agg(r.request_id order by r.occurred_at desc))[1:5] as samples
from public.usage_records r
where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.task_type is not null
  and r.status = 'success'
group by 1, 2, 3, 4, 5
"""

_REPEATS = """
select org_id, feature, provider, model,
       count(*) filter (where gap < %(dedup)s)::int8 as dup_requests,
       coalesce(sum(cost) filter (where gap < %(dedup)s), 0)::float8 as dup_cost,
       count(*) filter (where gap >= %(dedup)s and not cache_hit)::int8 as repeat_requests,
       coalesce(sum(cost) filter (where gap >= %(dedup)s and not cache_hit), 0)::float8 as repeat_cost,
       count(*)::int8 as hashed_requests,
       (array_agg(request_id) filter (where gap is not null))[1:5] as samples
from (
  select r.org_id, coalesce(r.feature, '(none)') as feature, r.provider, r.canonical_model as model, r.cache_hit,
         r.request_id,
         coalesce(r.cost_usd, 0) as cost,
         extract(epoch from r.occurred_at - lag(r.occurred_at) over w) as gap
  from public.usage_records r
  where r.org_id = any(%(orgs)s::uuid[]) and r.occurred_at >= %(since)s and r.prompt_hash is not null
  window w as (partition by r.org_id, r.prompt_hash, r.provider, r.canonical_model order by r.occurred_at)
) x
group by 1, 2, 3, 4
"""


@dataclass
class OrgData:
    org: str
    now: datetime
    days: float  # days of history the window really covers (a month is 30 of them)
    scopes: dict[tuple[str, str, str], dict[str, Any]]  # (feature, provider, model) -> sums + "series"
    tasks: list[dict[str, Any]]
    repeats: list[dict[str, Any]]
    users: list[dict[str, Any]]  # per end user: requests, cost, daily series
    prefixes: list[dict[str, Any]]  # per system prompt hash: requests, shortest input, token sums
    shapes: list[dict[str, Any]]  # per feature and model: median input and output, excess output tokens
    # Customers' signals (_signals.py): quality scores, output format overhead, shared prompt prefixes.
    quality: list[dict[str, Any]] = field(default_factory=list)
    formats: list[dict[str, Any]] = field(default_factory=list)
    shared_prefixes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def monthly(self) -> float:
        return 30.0 / self.days


def load(conn, org: str, now: datetime) -> OrgData:
    """One organization's aggregates."""
    return load_many(conn, [org], now)[str(org)]


def load_many(conn, orgs: list[str], now: datetime) -> dict[str, OrgData]:
    """The aggregates of several organizations, each query run once for all of them: planning a query
    over the rollup views and the day partitions costs more than running it for one organization."""
    orgs = [str(o) for o in orgs]
    # Whole UTC days, so the daily rollups and the raw per-pattern reads cover the same window.
    since = (now - timedelta(days=WINDOW_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    args = {"orgs": orgs, "since": since, "dedup": DEDUP_SECONDS}
    # As in the rollup refresh: JIT compiles longer than these aggregations run, and their sorts and hash
    # tables over a chunk of organizations want more than the default memory.
    conn.execute("select set_config('jit', 'off', true), set_config('work_mem', '64MB', true)")
    scopes: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {o: {} for o in orgs}
    first = dict.fromkeys(orgs, now)
    for r in conn.execute(_SCOPES, args).fetchall():
        org = str(r["org_id"])
        s = scopes[org].setdefault((r["feature"], r["provider"], r["model"]), defaultdict(float, series={}))
        for k in SUMS:
            s[k] += float(r[k] or 0)
        s["series"][r["day"].isoformat()] = round(float(r["cost"] or 0), 6)
        first[org] = min(first[org], datetime.combine(r["day"], datetime.min.time(), tzinfo=now.tzinfo))
    for r in conn.execute(_HOURS, args).fetchall():
        hours = scopes[str(r["org_id"])].get((r["feature"], r["provider"], r["model"]))
        if hours is not None:
            hours.setdefault("by_hour", {})[r["hour"]] = int(r["requests"])
    users: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in orgs}
    for r in conn.execute(_USERS, args).fetchall():
        u = users[str(r["org_id"])].setdefault(
            r["end_user_id"], {"end_user_id": r["end_user_id"], "requests": 0.0, "cost": 0.0, "series": {}}
        )
        u["requests"] += r["requests"] or 0
        u["cost"] += r["cost"] or 0
        u["series"][r["day"].isoformat()] = round(float(r["cost"] or 0), 6)

    def per_org(sql: str) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {o: [] for o in orgs}
        for r in conn.execute(sql, args).fetchall():
            rows[str(r.pop("org_id"))].append(r)
        return rows

    tasks, repeats, prefixes, shapes = per_org(_TASKS), per_org(_REPEATS), per_org(_PREFIXES), per_org(_SHAPES)
    signals = load_signals(conn, args)
    return {
        o: OrgData(o, now, max((now - max(first[o], since)).total_seconds() / 86400, 1.0), scopes[o], tasks[o],
                   repeats[o], list(users[o].values()), prefixes[o], shapes[o], **signals[o])
        for o in orgs
    }
