"""Budget spend: read from the rollups, on the organization's calendar, per scope, unpriced usage at a
conservative price. Checked against plain sums over the raw rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tokentra_core.db import connect
from tokentra_core.migrations import migrate


def make_org(db, tz: str = "UTC") -> str:
    org = str(uuid.uuid4())
    db.execute("insert into public.organizations (id, name, timezone) values (%s, 'spend', %s)", (org, tz))
    return org


def usage(db, org: str, at: datetime, cost: str | None, **cols) -> None:
    row = {
        "org_id": org,
        "occurred_at": at,
        "request_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": cost,
        "priced": cost is not None,
        **cols,
    }
    db.execute(
        f"insert into public.usage_records ({', '.join(row)}) values ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


def db_now(db) -> datetime:
    """The transaction's now(), at which the budget reads its current period: a row stamped by this
    process's clock lands in the next day when the transaction began just before midnight."""
    return db.execute("select now() as n").fetchone()["n"]


def budget(db, org: str, **cols) -> str:
    row = {"org_id": org, "name": "b", "amount": 100, "period": "monthly", **cols}
    return db.execute(
        f"insert into public.budgets ({', '.join(row)}) values ({', '.join(['%s'] * len(row))}) returning id",
        list(row.values()),
    ).fetchone()["id"]


def spend(db, budget_id, start: datetime, end: datetime) -> Decimal:
    return db.execute(
        "select private.budget_spend(b, %s, %s) as s from public.budgets b where b.id = %s",
        (start, end, budget_id),
    ).fetchone()["s"]


def state(db, budget_id) -> dict:
    return db.execute(
        "select s.* from public.budgets b cross join lateral private.budget_state(b) s where b.id = %s",
        (budget_id,),
    ).fetchone()


def test_daily_period_follows_the_organization_time_zone(db):
    org = make_org(db, "Asia/Kolkata")  # UTC+5:30: local midnight is 18:30 UTC the day before
    b = budget(db, org, period="daily")
    st_ = state(db, b)
    local_midnight = st_["period_start"]
    assert (local_midnight.astimezone(UTC).minute, st_["period_end"] - local_midnight) == (
        30,
        timedelta(days=1),
    )
    usage(db, org, local_midnight + timedelta(minutes=10), "2")
    usage(db, org, local_midnight - timedelta(minutes=10), "5")  # yesterday, local time
    assert state(db, b)["current_spend"] == Decimal("2")


def test_weekly_period_starts_on_the_configured_day(db):
    org = make_org(db, "America/New_York")
    at = datetime(2026, 3, 12, 15, 0, tzinfo=UTC)  # a Thursday
    for week_start, expected_day in ((1, 9), (0, 8), (4, 12), (5, 6)):
        row = db.execute(
            "select * from private.budget_period('weekly', %s::smallint, 'America/New_York', %s)",
            (week_start, at),
        ).fetchone()
        local = row["period_start"].astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert (
            local.day,
            local.hour,
            row["period_end"] - row["period_start"] in (timedelta(days=7), timedelta(days=7, hours=-1)),
        ) == (expected_day, 0, True)
    assert org


def test_monthly_period_spans_a_daylight_saving_change(db):
    row = db.execute(
        "select * from private.budget_period('monthly', 1::smallint, 'Europe/Paris', '2026-03-15 12:00Z')"
    ).fetchone()
    assert row["period_start"] == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert row["period_end"] == datetime(2026, 3, 31, 22, tzinfo=UTC)  # summer time from March 29


def test_scopes_count_only_their_own_usage(db):
    org = make_org(db)
    team = db.execute(
        "insert into public.teams (org_id, name) values (%s, 'growth') returning id", (org,)
    ).fetchone()["id"]
    project = db.execute(
        "insert into public.projects (org_id, name) values (%s, 'search') returning id", (org,)
    ).fetchone()["id"]
    pinned = db.execute("select id from private.new_api_key(%s, %s)", (org, project)).fetchone()["id"]
    other_key = db.execute("select id from private.new_api_key(%s)", (org,)).fetchone()["id"]
    now = db_now(db)
    usage(db, org, now, "1", team="growth", feature="chat", end_user_id="u1", api_key_id=other_key)
    usage(db, org, now, "2", team="sales", project="search", model="gpt-4o", api_key_id=other_key)
    usage(db, org, now, "4", api_key_id=pinned, feature="chat")
    usage(db, org, now, "8", end_user_id="u1", model="gpt-4o")
    expected = {
        ("organization", None): 15,
        ("team", "growth"): 1,
        ("project", str(project)): 6,
        ("model", "gpt-4o"): 10,
        ("feature", "chat"): 5,
        ("user", "u1"): 9,
        ("api_key", str(pinned)): 4,
        ("api_key", str(other_key)): 3,
    }
    for (scope_type, scope_id), total in expected.items():
        b = budget(db, org, period="daily", scope_type=scope_type, scope_id=scope_id)
        assert state(db, b)["current_spend"] == total, (scope_type, scope_id)
    assert str(team)


def test_unpriced_usage_counts_at_the_providers_dearest_price_never_zero(db):
    org = make_org(db)
    b = budget(db, org, period="daily")
    usage(db, org, db_now(db), None, model="brand-new-model", input_tokens=1_000_000, output_tokens=0)
    dearest = db.execute("select input_mtok from private.conservative_mtok('openai')").fetchone()[
        "input_mtok"
    ]
    got = state(db, b)["current_spend"]
    assert got > 0 and got == dearest  # a million input tokens at the dearest input price per million
    top = db.execute(
        "select max(input_mtok) as m from private.model_prices where provider_id = 'openai' "
        "and service_tier = ''"
    ).fetchone()["m"]
    assert top is None or dearest == top


def test_status_thresholds_and_projection(db):
    org = make_org(db)
    b = budget(db, org, period="daily", amount=10, alert_thresholds=[50, 80, 100])
    assert state(db, b)["status"] == "ok"
    usage(db, org, db_now(db), "5")
    s = state(db, b)
    assert (s["status"], s["crossed_thresholds"], s["remaining"]) == ("warning", [50], Decimal(5))
    assert s["projected_spend"] >= Decimal(5)
    usage(db, org, db_now(db), "5")
    assert state(db, b)["status"] == "exceeded"


def test_spend_over_any_range_equals_the_raw_sum_after_refreshes(scratch_dsn):
    """Whole days from the daily rollup, hours from the hourly one, minutes from raw rows, late events
    from the pending deltas: always the raw total. On a scratch database, so refreshing the rollups
    holds no lock on anyone else's."""
    migrate(scratch_dsn, log=lambda *_: None)
    with connect(scratch_dsn, autocommit=True) as conn:
        orgs = {tz: _seed(conn, tz) for tz in ("UTC", "Asia/Kathmandu", "America/St_Johns")}
        base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=8)

        @settings(max_examples=40, deadline=None)
        @given(
            start_minutes=st.integers(0, 60 * 24 * 5),
            length_minutes=st.integers(1, 60 * 24 * 6),
            tz=st.sampled_from(sorted(orgs)),
        )
        def check(start_minutes: int, length_minutes: int, tz: str) -> None:
            org, b = orgs[tz]
            start = base + timedelta(minutes=start_minutes)
            end = start + timedelta(minutes=length_minutes)
            raw = conn.execute(
                "select coalesce(sum(cost_usd), 0) as s from public.usage_records where org_id = %s "
                "and occurred_at >= %s and occurred_at < %s",
                (org, start, end),
            ).fetchone()["s"]
            assert spend(conn, b, start, end) == raw

        check()


def _seed(conn, tz: str) -> tuple[str, str]:
    # 200 rows over 8 days, materialized by a refresh; then late rows below the watermark (pending
    # deltas) and fresh rows past it (read raw).
    org = make_org(conn, tz)
    b = budget(conn, org, period="daily")
    base = datetime.now(UTC) - timedelta(days=8)
    insert = (
        "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd, "
        "priced) select %s, %s + (i * %s::interval), %s || i, 'openai', 'gpt-4o', (i %% 7 + 1) * 0.013, true "
        "from generate_series(1, %s) i"
    )
    conn.execute(insert, (org, base, "57 minutes 13 seconds", "a", 200))
    conn.execute("select private.refresh_usage_rollups(max_window => null)")
    conn.execute(insert, (org, base + timedelta(minutes=7), "3 hours 1 minute", "late", 40))
    conn.execute(insert, (org, datetime.now(UTC) - timedelta(seconds=30), "0 seconds", "fresh", 3))
    return org, b
