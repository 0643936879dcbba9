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

from org_fixtures import make_org
from tokentra_functions.assistant.result import ungrounded
from tokentra_functions.assistant.template import template_answer
from tokentra_functions.assistant.tools import TOOLS, ToolContext, read_only_as_user, run_tool
from tokentra_functions.user_auth import verify


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[AsyncConnectionPool]:
    p = AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False,
                            kwargs={"prepare_threshold": None, "row_factory": dict_row})
    await p.open(wait=True)
    yield p
    await p.close()


def context(pool, org, role: str, org_id: str, timeout_ms: int = 5000) -> ToolContext:
    user = verify(org.tokens[role])
    return ToolContext(pool=pool, user=user, org_id=UUID(org_id), today=datetime.now(UTC).date(), max_rows=50,
                       timeout_ms=timeout_ms)


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
