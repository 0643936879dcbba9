"""The cost assistant's tools: parameterised reads over our query functions (the SQL behind /costs,
/usage/timeseries, /anomalies, /budgets, /optimization/recommendations, /forecast) and the `analytics`
views. No tool takes SQL, a table name or an organization: the organization is the one the request was
authorised for, and every query runs as the asking user (RLS), in a read-only transaction with a
statement timeout, cut to a row cap before the model reads it.

Every run answers the text the model reads (JSON) and its sources: which query ran with which parameters.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tokentra_core.db import AsyncConn, one_async
from tokentra_functions.user_auth import UserClaims, as_user

__all__ = ["DATE_ARGUMENTS", "TOOLS", "AssistantTool", "ToolContext", "ToolResult", "read_only_as_user", "run_tool"]

Dimension = Literal["team", "project", "feature", "model", "provider", "api_key_id", "canonical_model"]
MAX_DAYS = 92  # a quarter: enough for "why", and bounded
MAX_HOURLY_DAYS = 14
MAX_CONTENT_CHARS = 24_000  # what one tool result may put in front of the model
# The years a model may ask about: far from date arithmetic's limits (0001-01-01 minus a microsecond
# overflows), and wider than any data we hold.
FIRST_YEAR, LAST_YEAR = 2000, 2099


def _in_range(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


Day = Annotated[date, AfterValidator(_in_range)]
Moment = Annotated[datetime, AfterValidator(_in_range)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Filters(_Args):
    feature: str | None = Field(default=None, description="Only this feature (exact name), or null.")
    model: str | None = Field(default=None, description="Only this model as sent (exact name), or null.")
    team: str | None = Field(default=None, description="Only this team, or null.")
    project: str | None = Field(default=None, description="Only this project, or null.")
    provider: str | None = Field(default=None, description="Only this provider (openai, anthropic, ...), or null.")


class CostsArgs(_Filters):
    start_date: Day = Field(description="First UTC day, inclusive (YYYY-MM-DD).")
    end_date: Day = Field(description="Last UTC day, inclusive.")
    group_by: list[Dimension] = Field(description="Up to two dimensions to break the cost down by; [] for totals.")
    granularity: Literal["total", "day"] = Field(description="total: one row per group; day: per UTC day too.")
    limit: int | None = Field(default=None, description="Rows to return, largest cost first (default 20).")


class ComparePeriodsArgs(_Filters):
    dimension: Dimension | None = Field(description="Break the change down by this dimension, or null.")
    current_start: Day = Field(description="First UTC day of the period to explain, inclusive.")
    current_end: Day = Field(description="Its last UTC day, inclusive.")
    previous_start: Day = Field(description="First UTC day of the period to compare with.")
    previous_end: Day = Field(description="Its last UTC day, inclusive.")
    limit: int | None = Field(default=None, description="Values to return, largest change first (default 10).")


class TimeseriesArgs(_Filters):
    start_at: Moment = Field(description="Start, inclusive (ISO 8601, UTC).")
    end_at: Moment = Field(description="End, exclusive.")
    granularity: Literal["hour", "day"]
    group_by: Dimension | None = Field(description="One series per value of this dimension, or null.")


class UsageBreakdownArgs(_Args):
    start_date: Day = Field(description="First UTC day, inclusive.")
    end_date: Day = Field(description="Last UTC day, inclusive.")
    dimension: Literal["team", "project", "feature", "model", "provider", "api_key_id", "status", "canonical_model"]
    limit: int | None = Field(default=None, description="Rows, largest cost first (default 20).")


class AnomaliesArgs(_Args):
    status: Literal["open", "acknowledged", "closed"] | None = Field(description="Only this status, or null.")
    severity: Literal["low", "medium", "high", "critical"] | None = Field(description="Only this severity, or null.")
    since: Moment | None = Field(description="Only incidents that started at or after this time, or null.")
    limit: int | None = Field(default=None, description="Incidents, newest first (default 10).")


class RecommendationsArgs(_Args):
    status: Literal["open", "applied", "dismissed", "under_review"] | None = Field(
        description="Only this status, or null.")
    category: str | None = Field(default=None, description="Only this category, or null.")
    min_savings: float | None = Field(default=None, description="Only those saving at least this many USD a month.")
    limit: int | None = Field(default=None, description="Recommendations, largest savings first (default 10).")


class BudgetsArgs(_Args):
    status: Literal["ok", "warning", "exceeded"] | None = Field(description="Only budgets in this state, or null.")


class ForecastArgs(_Args):
    pass


@dataclass(frozen=True)
class ToolContext:
    """Who asks, for which organization, and the bounds of every query."""

    pool: AsyncConnectionPool[AsyncConn]
    user: UserClaims
    org_id: UUID
    today: date
    max_rows: int
    timeout_ms: int


@dataclass
class ToolResult:
    """A tool's answer: the JSON the model reads (`result`), its sources, or an error the model is told."""

    result: dict[str, Any] | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def content(self) -> str:
        if self.error is not None:
            return json.dumps({"error": self.error})
        text = json.dumps(self.result, default=str)
        if len(text) > MAX_CONTENT_CHARS:  # never more than this in front of the model, whatever a tool returns
            text = json.dumps({"error": "the result is too large; narrow the question (fewer days, a filter)"})
        return text


@asynccontextmanager
async def read_only_as_user(ctx: ToolContext) -> AsyncIterator[AsyncConn]:
    """A transaction as the asking user (RLS decides what it sees) that can write nothing and is cancelled
    past the timeout."""
    async with as_user(ctx.pool, ctx.user) as conn:
        await conn.execute("set transaction read only")
        await conn.execute("select set_config('statement_timeout', %s, true)", (str(ctx.timeout_ms),))
        yield conn


def _plain(value: Any) -> Any:
    """JSON-ready: exact decimals as numbers (integral ones as integers)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 10**15 else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, date | datetime | UUID) else v) for k, v in params.items()}


async def _function(ctx: ToolContext, function: str, args: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Call public.<function> (one of this module's constant names) as the user; its jsonb and the source."""
    named = ", ".join(f"{name} => %({name})s" for name in args)
    async with read_only_as_user(ctx) as conn:
        cur = await conn.execute(f"select public.{function}({named})::text as result", args)
        row = await one_async(cur)
    value = json.loads(row["result"], parse_float=Decimal) if row["result"] else None
    return value, {"query": f"public.{function}", "parameters": _jsonable(args)}


def _limit(asked: int | None, default: int, ctx: ToolContext) -> int:
    return max(1, min(asked or default, ctx.max_rows))


def _span(start: date, end: date, name: str, most: int = MAX_DAYS) -> str | None:
    if end < start:
        return f"{name}: the end is before the start"
    if (end - start).days + 1 > most:
        return f"{name}: at most {most} days"
    return None


def _filters(a: _Filters) -> dict[str, Any]:
    return {"team": a.team, "project": a.project, "feature": a.feature, "model": a.model, "provider": a.provider}


KEEP_COST = ("date", "team", "project", "feature", "model", "provider", "api_key_id", "canonical_model",
             "total_cost", "total_requests", "total_input_tokens", "total_output_tokens", "total_errors")


async def _costs(ctx: ToolContext, a: CostsArgs) -> ToolResult:
    if (bad := _span(a.start_date, a.end_date, "end_date")) or len(a.group_by) > 2:
        return ToolResult(None, error=bad or "group_by: at most two dimensions")
    value, source = await _function(ctx, "cost_breakdown", {
        "start_date": a.start_date, "end_date": a.end_date, "group_by": list(dict.fromkeys(a.group_by)),
        "granularity": a.granularity, "org": ctx.org_id, **_filters(a)})
    rows = [{k: r[k] for k in KEEP_COST if k in r} for r in ((value or {}).get("data") or [])]
    rows.sort(key=lambda r: (str(r.get("date", "")), -(r.get("total_cost") or 0)) if a.granularity == "day"
              else -(r.get("total_cost") or 0))
    shown = rows[:_limit(a.limit, 20, ctx)]
    total = sum((r.get("total_cost") or Decimal(0) for r in rows), Decimal(0))
    return ToolResult(_plain({"start_date": str(a.start_date), "end_date": str(a.end_date),
                              "total_cost_usd": total, "row_count": len(rows), "rows": shown}),
                      [{**source, "rows": len(rows)}])


async def _totals(ctx: ToolContext, a: ComparePeriodsArgs, start: date, end: date
                  ) -> tuple[dict[str, Decimal], dict[str, Any]]:
    value, source = await _function(ctx, "cost_breakdown", {
        "start_date": start, "end_date": end, "group_by": [a.dimension] if a.dimension else [],
        "granularity": "total", "org": ctx.org_id, **_filters(a)})
    out: dict[str, Decimal] = {}
    for r in (value or {}).get("data") or []:
        key = str(r.get(a.dimension)) if a.dimension else "total"
        out[key] = out.get(key, Decimal(0)) + (r.get("total_cost") or Decimal(0))
    return out, source


def _pct(change: Decimal, base: Decimal) -> Decimal | None:
    return round(change * 100 / base, 1) if base else None


async def _compare(ctx: ToolContext, a: ComparePeriodsArgs) -> ToolResult:
    if bad := (_span(a.current_start, a.current_end, "current_end")
               or _span(a.previous_start, a.previous_end, "previous_end")):
        return ToolResult(None, error=bad)
    now, s1 = await _totals(ctx, a, a.current_start, a.current_end)
    before, s2 = await _totals(ctx, a, a.previous_start, a.previous_end)
    cur, prev = sum(now.values(), Decimal(0)), sum(before.values(), Decimal(0))
    change = cur - prev
    result: dict[str, Any] = {
        "current": {"start_date": str(a.current_start), "end_date": str(a.current_end),
                    "days": (a.current_end - a.current_start).days + 1, "cost_usd": cur},
        "previous": {"start_date": str(a.previous_start), "end_date": str(a.previous_end),
                     "days": (a.previous_end - a.previous_start).days + 1, "cost_usd": prev},
        "change_usd": change, "change_pct": _pct(change, prev)}
    if a.dimension:
        values: list[dict[str, Any]] = []
        for v in set(now) | set(before):
            c, p = now.get(v, Decimal(0)), before.get(v, Decimal(0))
            values.append({"value": v, "current_cost_usd": c, "previous_cost_usd": p, "change_usd": c - p,
                           "change_pct": _pct(c - p, p), "share_of_change_pct": _pct(c - p, change)})
        values.sort(key=lambda v: (-abs(v["change_usd"]), v["value"]))
        result["dimension"] = a.dimension
        result["value_count"] = len(values)
        result["by_value"] = values[:_limit(a.limit, 10, ctx)]
    return ToolResult(_plain(result), [{**s1, "rows": len(now)}, {**s2, "rows": len(before)}])


async def _timeseries(ctx: ToolContext, a: TimeseriesArgs) -> ToolResult:
    most = MAX_HOURLY_DAYS if a.granularity == "hour" else MAX_DAYS
    if bad := _span(a.start_at.date(), (a.end_at - timedelta(microseconds=1)).date(), "end_at", most):
        return ToolResult(None, error=bad)
    value, source = await _function(ctx, "usage_timeseries", {
        "start_at": a.start_at, "end_at": a.end_at, "granularity": a.granularity, "group_by": a.group_by,
        "org": ctx.org_id, **_filters(a)})
    rows = (value or {}).get("data") or []
    keep = ("bucket", a.group_by or "", "cost", "requests", "input_tokens", "output_tokens", "errors",
            "latency_p95_ms")
    rows = [{k: r[k] for k in keep if k in r} for r in rows]
    cap = ctx.max_rows
    return ToolResult(_plain({"row_count": len(rows), "rows": rows[-cap:],
                              "note": f"the last {cap} points" if len(rows) > cap else None}),
                      [{**source, "rows": len(rows)}])


async def _usage_breakdown(ctx: ToolContext, a: UsageBreakdownArgs) -> ToolResult:
    if bad := _span(a.start_date, a.end_date, "end_date"):
        return ToolResult(None, error=bad)
    limit = _limit(a.limit, 20, ctx)
    # The dimension is one of the argument model's literals, composed as an identifier; values are parameters.
    query = sql.SQL(
        "select {dim}::text as value, sum(requests) as requests, sum(errors) as errors, sum(timeouts) as timeouts,"
        " sum(rate_limited) as rate_limited, sum(retries) as retries, sum(cache_hits) as cache_hits,"
        " sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,"
        " sum(cached_tokens) as cached_tokens, sum(cost_usd) as cost_usd,"
        " round(sum(latency_sum_ms)::numeric / nullif(sum(latency_count), 0), 1) as avg_latency_ms,"
        " round(100.0 * sum(errors) / nullif(sum(requests), 0), 2) as error_rate_pct"
        " from analytics.usage_daily where org_id = %(org)s and bucket >= %(start)s::date"
        " and bucket < %(end)s::date + 1 group by 1 order by sum(cost_usd) desc nulls last, 1 limit %(limit)s"
    ).format(dim=sql.Identifier(a.dimension))
    params = {"org": ctx.org_id, "start": a.start_date, "end": a.end_date, "limit": limit}
    async with read_only_as_user(ctx) as conn:
        rows = await (await conn.execute(query, params)).fetchall()
    return ToolResult(_plain({"dimension": a.dimension, "rows": [dict(r) for r in rows]}),
                      [{"query": "analytics.usage_daily", "parameters": _jsonable({**params, "group_by": a.dimension}),
                        "rows": len(rows)}])


KEEP_ANOMALY = ("id", "metric", "kind", "severity", "dimension", "dimension_value", "window_start", "window_end",
                "expected_value", "actual_value", "money_involved", "status")


async def _anomalies(ctx: ToolContext, a: AnomaliesArgs) -> ToolResult:
    limit = _limit(a.limit, 10, ctx)
    value, source = await _function(ctx, "anomaly_list", {
        "org": ctx.org_id, "status": a.status, "severity": a.severity, "since": a.since, "max_rows": limit})
    rows = [{k: r.get(k) for k in KEEP_ANOMALY} for r in ((value or {}).get("data") or [])]
    return ToolResult(_plain({"count": len(rows), "anomalies": rows}), [{**source, "rows": len(rows)}])


KEEP_RECOMMENDATION = ("id", "category", "scope_type", "scope_value", "title", "description", "status",
                       "current_monthly_cost", "projected_monthly_cost", "estimated_monthly_savings", "confidence",
                       "priority", "risk", "effort")


async def _recommendations(ctx: ToolContext, a: RecommendationsArgs) -> ToolResult:
    limit = _limit(a.limit, 10, ctx)
    value, source = await _function(ctx, "recommendation_list", {
        "org": ctx.org_id, "status": a.status, "category": a.category,
        "min_savings": Decimal(str(a.min_savings)) if a.min_savings is not None else None, "max_rows": limit})
    rows = [{k: r.get(k) for k in KEEP_RECOMMENDATION} for r in ((value or {}).get("data") or [])]
    return ToolResult(_plain({"count": len(rows), "recommendations": rows}), [{**source, "rows": len(rows)}])


async def _budgets(ctx: ToolContext, a: BudgetsArgs) -> ToolResult:
    params = {"org": ctx.org_id, "status": a.status, "limit": ctx.max_rows}
    async with read_only_as_user(ctx) as conn:
        rows = await (await conn.execute(
            "select id, name, amount, period, scope_type, scope_id, period_start, period_end, current_spend,"
            " remaining, status, projected_spend, hard_limit from public.budget_status"
            " where org_id = %(org)s and enabled and (%(status)s::text is null or status = %(status)s)"
            " order by current_spend / nullif(amount, 0) desc nulls last, name limit %(limit)s", params)).fetchall()
    return ToolResult(_plain({"count": len(rows), "budgets": [dict(r) for r in rows]}),
                      [{"query": "public.budget_status", "parameters": _jsonable(params), "rows": len(rows)}])


async def _forecast(ctx: ToolContext, a: ForecastArgs) -> ToolResult:
    value, source = await _function(ctx, "forecast_report", {"org": ctx.org_id})
    value = value or {}
    cap = ctx.max_rows
    # Held to the row cap like every tool: the month's daily series cut to their last (history) and first
    # (forecast) days, and the budgets' forecasts without theirs, the most pressing budgets first.
    org = dict(value.get("organization") or {})
    for series, keep_last in (("history", True), ("daily_forecast", False)):
        if isinstance(org.get(series), list):
            org[series] = org[series][-cap:] if keep_last else org[series][:cap]
    budgets = [{k: v for k, v in b.items() if k not in ("history", "daily_forecast")}
               for b in (value.get("budgets") or [])]
    budgets.sort(key=lambda b: -(b.get("overrun_probability") or 0))
    return ToolResult(_plain({"forecast": {"organization": org or None, "budget_count": len(budgets),
                                           "budgets": budgets[:cap]}}),
                      [{**source, "rows": (1 if org else 0) + len(budgets)}])


@dataclass(frozen=True)
class AssistantTool:
    name: str
    description: str
    args: type[_Args]
    run: Callable[[ToolContext, Any], Awaitable[ToolResult]]


TOOLS: dict[str, AssistantTool] = {t.name: t for t in (
    AssistantTool("costs", "Cost, requests and tokens between two UTC days, by up to two dimensions, optionally "
                  "per day (public.cost_breakdown, as GET /costs).", CostsArgs, _costs),
    AssistantTool("compare_periods", "Total cost of two periods and the change, optionally broken down by one "
                  "dimension with each value's change, change_pct and share_of_change_pct: what explains a "
                  "rise or a fall.", ComparePeriodsArgs, _compare),
    AssistantTool("usage_timeseries", "Cost, requests, tokens, errors and p95 latency per hour or day "
                  "(public.usage_timeseries, as GET /usage/timeseries).", TimeseriesArgs, _timeseries),
    AssistantTool("usage_breakdown", "Requests, errors, timeouts, retries, cache hits, tokens, cost, mean "
                  "latency and error rate by one dimension (the analytics.usage_daily view).",
                  UsageBreakdownArgs, _usage_breakdown),
    AssistantTool("anomalies", "Cost and usage anomalies the detector found, newest first.", AnomaliesArgs,
                  _anomalies),
    AssistantTool("recommendations", "Cost-saving recommendations, largest estimated monthly savings first.",
                  RecommendationsArgs, _recommendations),
    AssistantTool("budgets", "Budgets with their current spend, remaining amount, status and projected spend "
                  "at period end.", BudgetsArgs, _budgets),
    AssistantTool("forecast", "The month-end spend forecast with its intervals, and each budget's forecast.",
                  ForecastArgs, _forecast),
)}


async def run_tool(ctx: ToolContext, name: str, args: BaseModel) -> ToolResult:
    """Run one tool of TOOLS; a query that fails or times out, or arguments no query can take (a date out
    of range), is an error result told to the model, never an exception."""
    tool = TOOLS[name]
    try:
        return await tool.run(ctx, args)
    except (ValueError, OverflowError) as exc:
        return ToolResult(None, error=f"the arguments cannot be used: {str(exc)[:200]}")
    except psycopg.errors.QueryCanceled:
        return ToolResult(None, error=f"the query took longer than {ctx.timeout_ms} ms; narrow it")
    except psycopg.Error as exc:
        return ToolResult(None, error=f"the query failed ({exc.sqlstate or type(exc).__name__})")


def _is_date(annotation: Any) -> bool:
    return annotation in (date, datetime, Day, Moment) or any(_is_date(a) for a in get_args(annotation))


# The arguments that name a period: the only ones an answer may cite (as the dates it asked about).
DATE_ARGUMENTS = frozenset(name for t in TOOLS.values() for name, f in t.args.model_fields.items()
                           if _is_date(f.annotation))
