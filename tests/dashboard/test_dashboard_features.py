"""The dashboard's reconciliation, weekly reports and Ask pages in headless Chromium, over real data: a
generated month tracked through ingest and billed by the local provider admin servers, synced and
reconciled by the real jobs; weekly reports written by the real job (no model key: the template); the
assistant answering through the real functions server. Every figure shown is checked against the
endpoint's JSON; a viewer sees no re-price button; an owner re-prices from the page."""

from __future__ import annotations

import csv
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from dashboard_world import World, screenshot, settled, sign_in, wait_until
from test_dashboard import kpi, marks, money

from secret_registry import SECRETS_SEEN
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_core.settings import Settings
from tokentra_dev.recon_world import World as ReconWorld
from tokentra_dev.recon_world import generate, ingest, world_prices
from tokentra_dev.testing.provider_admin_servers import ANTHROPIC_ADMIN_KEY, OPENAI_ADMIN_KEY, ProviderAdminServer
from tokentra_worker.gap_causes import run_gap_causes
from tokentra_worker.jobs import JobContext
from tokentra_worker.provider_sync import run_provider_sync
from tokentra_worker.reports import report_week, run_weekly_reports

SECRETS_SEEN.extend([OPENAI_ADMIN_KEY, ANTHROPIC_ADMIN_KEY])
QUESTION = "Why did our costs increase last week?"


@dataclass
class Featured:
    recon: ReconWorld
    first: date
    last: date


def _job(fn: Callable[[], str]) -> str:
    """Run a job in its own thread, as the worker does: Playwright's driver keeps an event loop on this one."""
    out: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(300)
    if errors:
        raise errors[0]
    assert out, "the job did not finish"
    return out[0]


@pytest.fixture(scope="module")
def featured(world: World, dsn: str) -> Featured:
    """The world's organization, connected to the local admin servers with a generated bill of its own
    tracked calls (gaps planted), synced and reconciled; two weekly reports written."""
    now = datetime.now(UTC)
    seed = random.SystemRandom().randrange(10**6)
    recon = generate(seed, now, world_prices(dsn, now.date() - timedelta(days=5)), days=10, scale=0.4)
    with ProviderAdminServer(recon.ledger) as server:
        with connect(dsn, autocommit=True) as conn:
            store_provider_connection(conn, uuid.UUID(world.org_id), "openai", "sk-inference-openai-0000",
                                      admin_key=OPENAI_ADMIN_KEY, base_url=server.openai_base_url)
            store_provider_connection(conn, uuid.UUID(world.org_id), "anthropic", "sk-ant-inference-0000",
                                      admin_key=ANTHROPIC_ADMIN_KEY, base_url=server.anthropic_base_url)
        ingest(recon.calls, world.functions_url, world.key)
        _job(lambda: run_provider_sync(dsn, now=now, orgs=[world.org_id]))
    _job(lambda: run_gap_causes(dsn, orgs=[world.org_id]))
    offline = Settings(OPENAI_API_KEY="", ANTHROPIC_API_KEY="")
    week = report_week(now)
    for start in (week - timedelta(days=7), week):
        summary = _job(lambda start=start: run_weekly_reports(JobContext(dsn, offline, "dashboard-tests"),
                                                              orgs=[world.org_id], week=start))
        assert "1 reports written" in summary, summary
    return Featured(recon, recon.first_day, recon.last_day)


def _full(world: World, role: str, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{world.functions_url}{path}", headers=world.auth(role), timeout=60, **kw)
    assert r.status_code < 300, r.text
    return r.json()


def _js(value: Any) -> str:
    """A number as JavaScript prints it (shortest round trip, no trailing .0)."""
    return repr(float(value)).removesuffix(".0")


def _span(featured: Featured) -> dict[str, str]:
    return {"start_date": featured.first.isoformat(), "end_date": featured.last.isoformat()}


def _ours(meta: dict[str, Any]) -> set[str]:
    return {c["cause"] for c in meta["causes"] if c["ours"]}


def _recon_url(world: World, featured: Featured) -> str:
    return (f"{world.dashboard_url}#/reconciliation?org={world.org_id}"
            f"&start={featured.first.isoformat()}&end={featured.last.isoformat()}")


def test_reconciliation_page_shows_what_the_endpoint_answers(page: Any, world: World, featured: Featured) -> None:
    body = _full(world, "owner", "GET", "/reconciliation", params={"org_id": world.org_id, **_span(featured)})
    rows, meta = body["data"], body["meta"]
    assert rows and Decimal(str(meta["totals"]["billed_cost"])) > 0, meta["totals"]
    sign_in(page, world, "owner")
    page.goto(_recon_url(world, featured))
    settled(page, "reconciliation")
    assert page.locator('[data-state="error"]').count() == 0, page.inner_text("main")
    totals = meta["totals"]
    for name in ("tracked", "billed", "gap", "unexplained"):
        key = {"tracked": "tracked_cost", "billed": "billed_cost"}.get(name, name)
        assert kpi(page, name) == money(totals[key]), name
    # the daily chart: two lines and a bar for each day with a gap
    gap_days = sum(1 for d in meta["series"] if Decimal(str(d["gap"])) != 0)
    assert page.locator('[data-chart="tracked-billed"] .recharts-line-curve').count() == 2
    assert marks(page, "tracked-billed") >= 2 + gap_days and gap_days > 0
    # the gap by cause: every cause of the list with its amount, a bar for each one that is not zero
    causes = page.locator('[data-testid="causes-table"] tbody tr')
    assert causes.count() == len(meta["causes"])
    for i, c in enumerate(meta["causes"]):
        assert causes.nth(i).locator('[data-col="cause"]').inner_text() == c["cause"]
        assert causes.nth(i).locator('[data-col="amount"]').inner_text() == money(totals["causes"].get(c["cause"], 0))
    named = [c for c, v in totals["causes"].items() if Decimal(str(v)) != 0]
    assert marks(page, "gap-by-cause") == len(named) > 0
    # the rows, and the re-price button exactly where the cause is ours
    table = page.locator('[data-testid="reconciliation-table"] tbody tr')
    assert table.count() == len(rows)
    for i in random.sample(range(len(rows)), min(8, len(rows))):
        cells = table.nth(i)
        assert cells.locator('[data-col="billed_cost"]').inner_text() == money(rows[i]["billed_cost"])
        assert cells.locator('[data-col="gap"]').inner_text() == money(rows[i]["gap"])
    ours = _ours(meta)
    fixable = [r for r in rows if any(k in ours and Decimal(str(v)) != 0 for k, v in r["causes"].items())]
    assert fixable, "the generated month planted no gap of ours"
    assert page.locator('[data-action="reprice"]').count() == len(fixable)
    screenshot(page, "reconciliation")

    with page.expect_download() as download:
        page.click('[data-testid="reconciliation-table"] button:has-text("Export CSV")')
    got = list(csv.DictReader(download.value.path().read_text().splitlines()))
    assert len(got) == len(rows)
    assert [Decimal(g["billed_cost"]) for g in got] == [Decimal(str(r["billed_cost"])) for r in rows]
    assert [g["canonical_model"] for g in got] == [r.get("canonical_model") or "" for r in rows]


def test_the_filters_are_in_the_url(page: Any, world: World, featured: Featured) -> None:
    sign_in(page, world, "owner")
    page.goto(_recon_url(world, featured) + "&provider=anthropic")
    settled(page, "reconciliation", "reconciliation-anthropic")
    body = _full(world, "owner", "GET", "/reconciliation",
                 params={"org_id": world.org_id, "provider": "anthropic", **_span(featured)})
    assert page.locator('[data-testid="reconciliation-table"] tbody tr').count() == len(body["data"]) > 0
    assert kpi(page, "billed") == money(body["meta"]["totals"]["billed_cost"])
    assert page.locator('select[name="provider"]').input_value() == "anthropic"


def test_reports_page_lists_and_shows_a_report(page: Any, world: World, featured: Featured) -> None:
    listed = _full(world, "owner", "GET", "/reports", params={"org_id": world.org_id})
    assert listed["meta"]["total"] == len(listed["data"]) == 2
    sign_in(page, world, "owner")
    page.click('[data-nav="reports"]')
    settled(page, "reports")
    rows = page.locator('[data-testid="reports-table"] tbody tr')
    assert rows.count() == 2
    for i, r in enumerate(listed["data"]):
        assert rows.nth(i).locator('[data-col="headline"]').inner_text() == r["headline"]
        assert rows.nth(i).locator('[data-col="cost_usd"]').inner_text() == money(r["cost_usd"])

    for r in listed["data"][::-1]:  # the older one by a click, then the newest
        rows.filter(has_text=r["headline"]).locator("button.link").click()
        page.wait_for_selector(f'[data-report="{r["id"]}"]')
        settled(page, "reports", f"report-{r['period_start'][:10]}")
        assert f"id={r['id']}" in page.url  # the view can be shared by its address
        report = _full(world, "owner", "GET", f"/reports/{r['id']}")["data"]
        assert page.get_by_test_id("report-headline").inner_text() == report["headline"]
        shown = " ".join(page.get_by_test_id("report-narrative").inner_text().split())
        assert shown == " ".join(report["narrative"].split())
        spend = report["evidence"]["spend"]
        assert kpi(page, "week-spend") == money(spend.get("this_week_usd", 0))
        assert kpi(page, "week-change") == money(spend.get("change_usd", 0))
        assert kpi(page, "week-requests") == f"{spend.get('requests', 0):,}"
        assert kpi(page, "week-anomalies") == f"{report['evidence']['anomalies']['count']:,}"
        assert "from the template (llm_off)" in page.inner_text('[data-section="report"]')


def test_ask_shows_the_answer_its_sources_and_that_the_model_is_unavailable(page: Any, world: World,
                                                                            featured: Featured) -> None:
    sign_in(page, world, "owner")  # the question asked from the overview's box opens the Ask page
    page.fill('[data-testid="ask-box"] input', QUESTION)
    page.click('[data-testid="ask-box"] button[type="submit"]')
    page.wait_for_selector('[data-section="answer"]', timeout=60_000)
    settled(page, "ask")
    assert page.locator('input[name="query"]').input_value() == QUESTION and "q=" in page.url
    answer = _full(world, "owner", "POST", "/assistant/query", json={"org_id": world.org_id, "query": QUESTION})
    # no model key on this server: the template answers, and the page says the model is unavailable
    assert (answer["source"], answer["fallback_reason"]) == ("template", "llm_off")
    assert page.get_attribute('[data-section="answer"]', "data-source") == "template"
    notice = page.get_by_test_id("assistant-unavailable").inner_text()
    assert "unavailable" in notice and "no model provider is configured" in notice
    shown = " ".join(page.get_by_test_id("assistant-answer").inner_text().split())
    assert shown == " ".join(answer["answer"].split())
    actions = page.locator('[data-testid="assistant-actions"] li')
    assert [actions.nth(i).inner_text() for i in range(actions.count())] == answer["suggested_actions"]
    assert answer["sources"]
    sources = page.locator('[data-testid="assistant-sources"] tbody tr')
    assert sources.count() == len(answer["sources"])
    for i, s in enumerate(answer["sources"]):
        assert sources.nth(i).locator('[data-col="query"]').inner_text() == s["query"]
        assert world.org_id in sources.nth(i).locator('[data-col="parameters"]').inner_text()
        assert sources.nth(i).locator('[data-col="rows"]').inner_text() == str(s["rows"])
    # the Ask page's own form, and its shared address asks again
    page.click('[data-nav="ask"]')
    settled(page, "ask", "ask-empty")
    assert page.locator('[data-section="answer"]').count() == 0
    page.fill('input[name="query"]', QUESTION)
    page.click('[data-testid="ask-form"] button[type="submit"]')
    page.wait_for_selector('[data-section="answer"]', timeout=60_000)
    assert " ".join(page.get_by_test_id("assistant-answer").inner_text().split()) == shown


def test_a_viewer_reads_the_new_pages_and_cannot_reprice(page: Any, world: World, featured: Featured) -> None:
    sign_in(page, world, "viewer")
    page.goto(_recon_url(world, featured))
    settled(page, "reconciliation", "reconciliation-as-viewer")
    assert page.locator('[data-testid="reconciliation-table"] tbody tr').count() > 0
    assert page.locator('[data-action="reprice"], button:has-text("Re-price")').count() == 0
    # weekly reports restate anomalies, budgets and recommendations, which a viewer may not read: no entry
    # for them, and the endpoint refuses
    assert page.locator('[data-nav="reports"]').count() == 0
    refused = httpx.get(f"{world.functions_url}/reports", headers=world.auth("viewer"),
                        params={"org_id": world.org_id}, timeout=30)
    assert refused.status_code == 403, refused.text
    # what the hidden button would call is refused by the database's role rules
    meta = _full(world, "viewer", "GET", "/reconciliation", params={"org_id": world.org_id, **_span(featured)})
    model = next(r for r in meta["data"] if any(k in _ours(meta["meta"]) and Decimal(str(v)) != 0
                                                 for k, v in r["causes"].items()))
    r = httpx.post(f"{world.functions_url}/reconciliation/reprice", headers=world.auth("viewer"), timeout=30,
                   json={"org_id": world.org_id, "provider": model["provider"],
                         "canonical_model": model["canonical_model"], **_span(featured)})
    assert r.status_code == 403, r.text


def test_an_owner_reprices_from_the_bill(page: Any, world: World, featured: Featured, dsn: str) -> None:
    def ours_of(model: str) -> Decimal:
        body = _full(world, "owner", "GET", "/reconciliation",
                     params={"org_id": world.org_id, "canonical_model": model, **_span(featured)})
        return sum((abs(Decimal(str(v))) for r in body["data"] for k, v in r["causes"].items()
                    if k in _ours(body["meta"])), Decimal(0))

    planted = [p for p in featured.recon.planted if p.cause == "price_change" and p.canonical_model]
    if not planted:
        pytest.skip(f"seed {featured.recon.seed} planted no price change")
    model = planted[0].canonical_model
    assert model is not None
    before = ours_of(model)
    assert before > 0
    sign_in(page, world, "owner")
    page.goto(_recon_url(world, featured) + f"&model={model}")
    settled(page, "reconciliation", "reconciliation-before-reprice")
    page.once("dialog", lambda d: d.accept())
    page.locator('[data-action="reprice"]').first.click()
    wait_until(lambda: "Re-priced" in (page.get_by_test_id("reprice-notice").all_inner_texts() or [""])[0], 30)
    with connect(dsn) as conn:  # the price the page reports is the one the organization now has
        price = conn.execute("select input_mtok, output_mtok from private.model_prices where org_id = %s "
                             "order by id desc limit 1", (world.org_id,)).fetchone()
    notice = page.get_by_test_id("reprice-notice").inner_text()
    assert price and f"${_js(price['input_mtok'])} input and ${_js(price['output_mtok'])} output" in notice, \
        (notice, price)
    after = ours_of(model)
    assert after <= Decimal("0.01") * before, (featured.recon.seed, before, after)
    # the page reloaded: the model's gap is no longer ours, so its button is gone
    wait_until(lambda: page.locator('[data-action="reprice"]').count() == 0, 10)
    screenshot(page, "reconciliation-after-reprice")
