"""The dashboard in headless Chromium: sign in with the one-time link, every page with the figures the
query functions answer, actions that change state, live updates, CSV export, and a viewer's limits."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
from dashboard_world import World, event, live_broadcaster, screenshot, settled, sign_in, wait_until

from tokentra_core.db import connect
from tokentra_core.settings import get_settings

PAGES = ["overview", "costs", "budgets", "alerts", "anomalies", "recommendations", "admin"]
LIVE_SECONDS = 2.0  # spend and alerts must show within this long of the ingest response


def money(value: Any) -> str:
    """As the dashboard writes USD (Intl.NumberFormat): 2 decimals; below a dollar up to 4, at least 2.
    Intl rounds the JavaScript number's shortest decimal form half away from zero: so does this."""
    n = Decimal(repr(float(value)))
    if n < 0:
        return "-" + money(-n)
    if 0 < n < 1:
        text = f"{n.quantize(Decimal('0.0001'), ROUND_HALF_UP):,}".rstrip("0")
        return "$" + text + "0" * (2 - len(text.split(".")[1]))
    return f"${n.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"


def marks(page: Any, chart: str) -> int:
    """How many bars, lines and areas a chart drew (0 when it drew nothing)."""
    # The overview's own SVG marks its bars, areas and lines with data-mark; the other pages' are Recharts'.
    recharts = ".recharts-wrapper :is(.recharts-bar-rectangle, .recharts-line-curve, .recharts-area-area)"
    return page.locator(f'[data-chart="{chart}"]').locator(f"svg [data-mark], {recharts}").count()


def kpi(page: Any, name: str) -> str:
    return page.locator(f'[data-kpi="{name}"] .kpi-value').inner_text()


def test_every_page_shows_what_the_functions_answer(page: Any, world: World) -> None:
    sign_in(page, world, "owner")
    seen = {}
    for name in PAGES:
        page.click(f'[data-nav="{name}"]')
        settled(page, name)
        assert page.locator('[data-state="error"]').count() == 0, f"{name}: {page.inner_text('main')}"
        seen[name] = page.inner_text("main")

    overview = world.get("owner", "/dashboard/overview", org_id=world.org_id)
    page.click('[data-nav="overview"]')
    settled(page, "overview")
    assert kpi(page, "spend") == money(overview["spend"])
    assert kpi(page, "requests") == f"{overview['requests']:,}"
    days_with_spend = sum(1 for d in overview["spend_by_day"] if Decimal(str(d["cost_usd"])) > 0)
    assert marks(page, "spend-by-day") >= days_with_spend > 0
    assert marks(page, "providers") == len(overview["spend_by_provider"])
    # each provider's bar carries its name and spend (its tooltip), in the answer's order
    assert page.locator('[data-chart="providers"] [data-mark="bar"] title').all_text_contents() == [
        f"{p['provider']}: {money(p['cost_usd'])}" for p in overview["spend_by_provider"]]
    for team in overview["top_teams"]:
        assert team["team"] in seen["overview"]
    assert "Spend spike on summarize" in seen["overview"]  # open alerts
    assert "Route classify-ticket to gpt-4o-mini" in seen["overview"]  # pending recommendations

    costs = world.get("owner", "/costs", org_id=world.org_id, group_by="model")
    rows = page.locator('[data-testid="costs-table"] tbody tr')
    page.click('[data-nav="costs"]')
    settled(page, "costs")
    assert rows.count() == len(costs)
    total = sum(Decimal(str(r["total_cost"])) for r in costs)
    assert page.get_by_test_id("costs-total").inner_text().startswith(money(total))

    budgets = world.get("owner", "/budgets", org_id=world.org_id)
    assert budgets and all(b["name"] in seen["budgets"] and money(b["current_spend"]) in seen["budgets"]
                           for b in budgets)
    anomaly_text = world.get("owner", f"/anomalies/{world.anomaly_id}/explanation")
    assert anomaly_text["headline"] in seen["anomalies"]
    recs = world.get("owner", "/optimization/recommendations", org_id=world.org_id, status="open")
    assert money(recs[0]["estimated_monthly_savings"]) in seen["recommendations"]
    assert all(email in seen["admin"] for email in world.emails.values())

    page.click('[data-nav="anomalies"]')
    settled(page, "anomalies")
    assert marks(page, "anomaly") >= 2  # the series and what was expected
    page.click('[data-nav="recommendations"]')
    settled(page, "recommendations")
    assert page.locator("[data-round]").count() == 2  # the consensus record, round by round
    assert marks(page, "evidence") == 3  # current, projected, savings


def test_shared_urls_keep_the_filters(page: Any, world: World) -> None:
    sign_in(page, world, "owner")
    url = (f"{world.dashboard_url}#/costs?org={world.org_id}&group_by=team,feature&granularity=day"
           f"&start_date={datetime.now(UTC).date().replace(day=1)}")
    page.goto(url)
    settled(page, "costs", "costs-by-team-and-day")
    want = world.get("owner", "/costs", org_id=world.org_id, group_by="team,feature,day", granularity="day",
                     start_date=str(datetime.now(UTC).date().replace(day=1)))
    assert page.locator('[data-testid="costs-table"] tbody tr').count() == len(want)
    assert page.locator('input[name="group_team"]').is_checked()
    assert marks(page, "series") == len({r["team"] for r in want})  # a line per team


def test_csv_export_is_the_functions_csv(page: Any, world: World) -> None:
    sign_in(page, world, "owner")
    page.goto(f"{world.dashboard_url}#/costs?org={world.org_id}&group_by=provider")
    page.wait_for_selector('[data-testid="costs-table"]')
    with page.expect_download() as download:
        page.click('[data-testid="costs-table"] button:has-text("Export CSV")')
    got = download.value.path().read_text()
    want = httpx.get(f"{world.functions_url}/costs", params={"org_id": world.org_id, "group_by": "provider"},
                     headers={**world.auth("owner"), "Accept": "text/csv"}, timeout=30).text
    # Same rows and exact decimals; the saved file may end its lines differently from the HTTP body.
    assert got.splitlines() == want.splitlines() and len(got.splitlines()) >= 2


def test_acknowledge_an_alert(page: Any, world: World) -> None:
    sign_in(page, world, "owner")
    page.goto(f"{world.dashboard_url}#/alerts?org={world.org_id}&status=open")
    row = page.locator('[data-testid="events-table"] tr', has_text="Spend spike on summarize")
    row.locator('[data-action="acknowledge"]').click()
    wait_until(lambda: world.get("owner", f"/alerts/events/{world.alert_id}")["status"] == "acknowledged", 10)
    # The list reloads itself: the open filter no longer shows it (a live alert.updated message, or the reload).
    wait_until(lambda: page.locator('[data-testid="events-table"] tr', has_text="Spend spike on summarize")
               .count() == 0, 5)


def test_apply_a_recommendation(page: Any, world: World) -> None:
    sign_in(page, world, "owner")
    page.goto(f"{world.dashboard_url}#/recommendations?org={world.org_id}&id={world.recommendation_id}")
    page.wait_for_selector('[data-section="recommendation-detail"][data-status="open"]')
    page.locator('[data-action="apply"]').click()
    wait_until(lambda: world.recommendation_id in [
        r["id"] for r in world.get("owner", "/optimization/recommendations", org_id=world.org_id, status="applied")
    ], 10)
    with connect() as conn:
        rule = conn.execute("select traffic_share, action from public.routing_rules where recommendation_id = %s",
                            (world.recommendation_id,)).fetchone()
    assert rule["traffic_share"] == 1 and rule["action"] == {"model": "gpt-4o-mini"}


def test_spend_and_alerts_update_live(page: Any, world: World) -> None:
    live = live_broadcaster(get_settings().dsn)
    next(live)
    try:
        sign_in(page, world, "owner")
        page.wait_for_selector('[data-testid="live-status"]:has-text("live")')
        before = money(world.get("owner", "/dashboard/overview", org_id=world.org_id)["spend"])
        wait_until(lambda: kpi(page, "spend") == before, 5)
        big = event(random.Random(), datetime.now(UTC) - timedelta(seconds=5),
                    ("review-contract", "legal", "openai", "gpt-4o", 120_000, 2_000))
        world.ingest([big])
        took = wait_until(lambda: kpi(page, "spend") != before, LIVE_SECONDS)
        spend = world.get("owner", "/dashboard/overview", org_id=world.org_id)["spend"]
        wait_until(lambda: kpi(page, "spend") == money(spend), 2)
        print(f"spend shown {took:.2f} s after the ingest response")

        title = f"Live alert {uuid.uuid4().hex[:6]}"
        with connect(autocommit=True) as conn:
            conn.execute("insert into public.alert_events (org_id, dedup_key, severity, title) "
                         "values (%s, %s, 'warning', %s)", (world.org_id, title, title))
        took = wait_until(lambda: title in page.inner_text('[data-section="open-alerts"]'), LIVE_SECONDS)
        print(f"alert shown {took:.2f} s after it was raised")
    finally:
        next(live, None)


def test_a_viewer_sees_no_admin_and_no_buttons(page: Any, world: World) -> None:
    sign_in(page, world, "viewer")
    settled(page, "overview", "overview-as-viewer")
    nav = [a.get_attribute("data-nav") for a in page.locator("[data-nav]").all()]
    # what private.role_permissions gives a viewer: usage (weekly reports also restate anomalies, budgets
    # and recommendations, which a viewer may not read)
    assert nav == ["overview", "costs", "reconciliation", "ask"]
    assert page.get_by_test_id("role").inner_text() == "viewer"
    page.goto(f"{world.dashboard_url}#/admin?org={world.org_id}")
    page.wait_for_selector('[data-state="empty"]')
    assert re.search(r"does not include this page", page.inner_text("main"))
    assert page.locator("button", has_text=re.compile("Revoke|Remove|Create key|Acknowledge|Apply")).count() == 0
    screenshot(page, "admin-as-viewer")
    # What the hidden page would have called is refused by the database's role rules.
    r = httpx.get(f"{world.functions_url}/admin/members", params={"org_id": world.org_id},
                  headers=world.auth("viewer"), timeout=30)
    assert r.status_code == 403
