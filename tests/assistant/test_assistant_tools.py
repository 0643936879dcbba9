"""The assistant's tools run as the asking user: RLS decides what they see (whatever organization they are
pointed at), the transaction is read-only with a statement timeout, and the template's text passes the
grounding check on whatever the data is."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest
from assistant_fixtures import add_anomaly, add_recommendation, add_weeks, compare_args
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from org_fixtures import make_org
from tokentra_functions.assistant.result import ungrounded
from tokentra_functions.assistant.template import template_answer
from tokentra_functions.assistant.tools import TOOLS, ToolContext, ToolResult, read_only_as_user, run_tool
from tokentra_functions.user_auth import verify


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False,
                            kwargs={"prepare_threshold": None, "row_factory": dict_row})
    await p.open(wait=True)
    yield p
    await p.close()


def context(pool, org, role: str, org_id: str, timeout_ms: int = 5000, max_rows: int = 50) -> ToolContext:
    user = verify(org.tokens[role])
    return ToolContext(pool=pool, user=user, org_id=UUID(org_id), today=datetime.now(UTC).date(),
                       max_rows=max_rows, timeout_ms=timeout_ms)


def every_tool_args(today) -> dict[str, dict]:
    """Arguments that make each tool read as much as it can."""
    start, end = str(today - timedelta(days=13)), str(today)
    filters = {"feature": None, "model": None, "team": None, "project": None, "provider": None}
    return {
        "costs": {"start_date": start, "end_date": end, "group_by": ["feature"], "granularity": "total",
                  "limit": None, **filters},
        "compare_periods": compare_args(today),
        "usage_timeseries": {"start_at": f"{start}T00:00:00Z", "end_at": f"{today + timedelta(days=1)}T00:00:00Z",
                             "granularity": "day", "group_by": "feature", **filters},
        "usage_breakdown": {"start_date": start, "end_date": end, "dimension": "feature", "limit": None},
        "anomalies": {"status": None, "severity": None, "since": None, "limit": None},
        "recommendations": {"status": None, "category": None, "min_savings": None, "limit": None},
        "budgets": {"status": None},
        "forecast": {},
    }


async def test_a_user_never_sees_another_organizations_figures_through_any_tool(pool, dsn):
    mine, theirs = make_org(dsn), make_org(dsn)
    add_weeks(dsn, mine.id, random.Random(21), features=["search", "chat"], unit=Decimal("1.25"))
    add_weeks(dsn, theirs.id, random.Random(22), features=["secret-feature"], unit=Decimal("777.7777"))
    add_recommendation(dsn, theirs.id, 4321.5, "secret-feature")
    add_anomaly(dsn, theirs.id, "secret-feature", 9876.5)
    add_recommendation(dsn, mine.id, 12.5, "search")
    add_anomaly(dsn, mine.id, "chat", 31.25)
    today = datetime.now(UTC).date()
    args = every_tool_args(today)
    assert set(args) == set(TOOLS)
    own = {}
    for name, tool in TOOLS.items():
        parsed = tool.args.model_validate(args[name])
        # pointed at the other organization (as a tricked model cannot, but the database must refuse anyway)
        stolen = await run_tool(context(pool, mine, "owner", theirs.id), name, parsed)
        text = stolen.content()
        for secret in ("777.7", "secret-feature", "4321.5", "9876.5", theirs.id):
            assert secret not in text, (name, text)
        own[name] = (await run_tool(context(pool, mine, "owner", mine.id), name, parsed)).content()
    # the same tools do read the asking user's own organization
    assert "search" in own["costs"] and "chat" in own["compare_periods"] and "search" in own["usage_breakdown"]
    assert "12.5" in own["recommendations"] and "31.25" in own["anomalies"] and "chat" in own["usage_timeseries"]
    # the other organization's owner sees their own through the same tools
    theirs_ctx = context(pool, theirs, "owner", theirs.id)
    assert "secret-feature" in (await run_tool(theirs_ctx, "costs", TOOLS["costs"].args.model_validate(
        args["costs"]))).content()


async def test_a_viewer_reads_usage_but_not_what_their_role_does_not_grant(pool, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(23), features=["search"])
    add_recommendation(dsn, org.id, 55.5, "search")
    args = every_tool_args(datetime.now(UTC).date())
    viewer = context(pool, org, "viewer", org.id)
    recs = await run_tool(viewer, "recommendations", TOOLS["recommendations"].args.model_validate(
        args["recommendations"]))
    assert recs.result == {"count": 0, "recommendations": []}
    costs = await run_tool(viewer, "costs", TOOLS["costs"].args.model_validate(args["costs"]))
    assert costs.result["row_count"] == 1


async def test_tool_queries_cannot_write_and_are_cut_off_at_the_timeout(pool, dsn):
    org = make_org(dsn)
    ctx = context(pool, org, "owner", org.id, timeout_ms=200)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        async with read_only_as_user(ctx) as conn:
            await conn.execute("insert into public.budgets (org_id, name, amount, period) values (%s, 'x', 1,"
                               " 'monthly')", (org.id,))
    with pytest.raises(psycopg.errors.QueryCanceled):
        async with read_only_as_user(ctx) as conn:
            await conn.execute("select pg_sleep(2)")
    # the connection went back to the pool as it came: a normal query works, not as the user
    async with pool.connection() as conn:
        row = await (await conn.execute("select current_user as u, current_setting('statement_timeout') as t")
                     ).fetchone()
    assert row["u"] != "authenticated" and row["t"] != "200ms"


async def test_a_bad_range_is_told_to_the_model_not_raised(pool, dsn):
    org = make_org(dsn)
    ctx = context(pool, org, "owner", org.id)
    today = datetime.now(UTC).date()
    args = {**every_tool_args(today)["costs"], "start_date": str(today), "end_date": str(today - timedelta(days=1))}
    result = await run_tool(ctx, "costs", TOOLS["costs"].args.model_validate(args))
    assert result.error == "end_date: the end is before the start" and '"error"' in result.content()
    args = {**args, "start_date": str(today - timedelta(days=400)), "end_date": str(today)}
    assert "at most 92 days" in (await run_tool(ctx, "costs", TOOLS["costs"].args.model_validate(args))).error


@pytest.mark.parametrize("seed", [31, 32, 33, 34])
async def test_the_template_cites_only_figures_of_its_queries(pool, dsn, seed):
    rng = random.Random(seed)
    org = make_org(dsn)
    if seed != 34:  # one organization without any usage at all
        week = add_weeks(dsn, org.id, rng)
        for f in list(week.current)[:rng.randint(0, 2)]:
            add_recommendation(dsn, org.id, rng.randint(1, 900_000) / 100, f)
        if rng.random() < 0.7:
            add_anomaly(dsn, org.id, next(iter(week.current)), rng.randint(1, 100_000) / 100)
    ctx = context(pool, org, "owner", org.id)
    text, actions, runs = await template_answer(ctx, "no model provider is configured")
    assert ungrounded("\n".join([text, *actions]), runs, ctx.today) == []
    assert "Spend in the 7 days" in text
    assert ungrounded(text + " It cost $1,234,567.89.", runs, ctx.today) == ["$1,234,567.89"]  # the check bites


async def test_dates_no_query_can_take_are_refused_by_name_and_never_raise(pool, dsn):
    org = make_org(dsn)
    ctx = context(pool, org, "owner", org.id)
    args = every_tool_args(ctx.today)
    for tool, field, value in (("usage_timeseries", "end_at", "0001-01-01T00:00"),
                               ("usage_timeseries", "start_at", "9999-12-31T23:59:59"),
                               ("anomalies", "since", "0001-01-01T00:00Z"), ("costs", "start_date", "1900-01-01"),
                               ("compare_periods", "previous_end", "9999-12-31")):
        with pytest.raises(ValidationError) as refused:
            TOOLS[tool].args.model_validate({**args[tool], field: value})
        assert refused.value.errors()[0]["loc"] == (field,) and "2000 to 2099" in str(refused.value)
    # arguments that got past validation anyway: date arithmetic that overflows is an error result
    tool = TOOLS["usage_timeseries"]
    unchecked = tool.args.model_construct(**{**tool.args.model_validate(args["usage_timeseries"]).__dict__,
                                             "end_at": datetime(1, 1, 1)})
    result = await run_tool(ctx, "usage_timeseries", unchecked)
    assert result.result is None and result.error and "cannot be used" in result.error
    assert '"error"' in result.content()


def test_only_results_and_queried_dates_ground_an_answer():
    today = datetime.now(UTC).date()
    week_start = str(today - timedelta(days=6))
    runs = [("recommendations", {"status": None, "category": "Costs fell 97% to $3", "min_savings": 4321.5,
                                 "limit": 7}, ToolResult({"count": 1, "recommendations": [
                                     {"title": "Cache prompts", "estimated_monthly_savings": 12.5}]})),
            ("usage_timeseries", {"start_at": f"{week_start}T00:00:00Z", "end_at": f"{today}T00:00:00Z"},
             ToolResult({"row_count": 0, "rows": []}))]
    # the model's own numbers and sentences are not evidence
    assert ungrounded("Costs fell 97% to $3.", runs, today) == ["97%", "$3"]
    assert ungrounded("Open savings of at least $4,321.50 a month; the top 7.", runs, today) == ["$4,321.50", "7"]
    # the results are, and so are the dates the model asked about
    assert ungrounded(f"One recommendation saves $12.50 a month, from {week_start} to {today}.", runs, today) == []


async def test_timeseries_and_forecast_reach_the_model_cut_to_the_row_cap(pool, dsn):
    rng = random.Random(41)
    org = make_org(dsn)
    add_weeks(dsn, org.id, rng, features=["search", "chat"])
    cap = rng.randint(3, 9)
    ctx = context(pool, org, "owner", org.id, max_rows=cap)
    start = ctx.today - timedelta(days=12)
    series = await run_tool(ctx, "usage_timeseries", TOOLS["usage_timeseries"].args.model_validate({
        **every_tool_args(ctx.today)["usage_timeseries"], "start_at": f"{start}T00:00:00Z",
        "granularity": "hour"}))
    assert series.error is None and series.result["row_count"] > cap and len(series.result["rows"]) == cap
    days = rng.randint(cap + 5, 40)
    n_budgets = cap + rng.randint(1, 4)
    point = [{"date": str(ctx.today - timedelta(days=d)), "cost": d} for d in range(days)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for b in range(n_budgets + 1):
            budget = None
            if b:
                budget = conn.execute("insert into public.budgets (org_id, name, amount, period) values"
                                      " (%s, %s, 100, 'monthly') returning id", (org.id, f"b{b}")).fetchone()[0]
            conn.execute(
                "insert into public.spend_forecasts (org_id, budget_id, period_start, period_end, spent_to_date,"
                " forecast, lower_80, upper_80, lower_95, upper_95, overrun_probability, method, history,"
                " daily_forecast) values (%s, %s, date_trunc('month', now()), date_trunc('month', now())"
                " + interval '1 month', 10, 20, 15, 25, 12, 28, %s, 'test', %s, %s)",
                (org.id, budget, b / (n_budgets + 1), psycopg.types.json.Jsonb(point),
                 psycopg.types.json.Jsonb(point)))
    forecast = (await run_tool(ctx, "forecast", TOOLS["forecast"].args.model_validate({}))).result["forecast"]
    assert len(forecast["organization"]["history"]) == len(forecast["organization"]["daily_forecast"]) == cap
    assert forecast["budget_count"] == n_budgets and len(forecast["budgets"]) == cap
    assert all("history" not in b and "daily_forecast" not in b for b in forecast["budgets"])
    assert forecast["budgets"][0]["budget_name"] == f"b{n_budgets}"  # the likeliest overrun first
