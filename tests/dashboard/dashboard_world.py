"""The dashboard's browser tests' world: Debian's headless Chromium driven by Playwright, against the real
functions server (which serves the built app at /dashboard/) and the real database.

One organization per module, filled the way production fills it: usage through the ingest function
with an API key, a budget through the budgets function, anomalies, recommendations and a consensus
record in the rows their jobs write, explanations by the real explanations job (LLM off: templates).
Screenshots of every page land in test-artifacts/screenshots (kept by CI, not committed)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb

from secret_registry import SECRETS_SEEN
from tokentra_cli import admin
from tokentra_cli.sign_in import login_link
from tokentra_core.db import connect
from tokentra_core.settings import REPO_ROOT, Settings, get_settings
from tokentra_worker.explanations import run_explanations
from tokentra_worker.jobs import JobContext

SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this closed
# network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORKLOADS = [  # feature, team, provider, model, input tokens, output tokens
    ("summarize", "search", "openai", "gpt-4o", 6000, 350),
    ("classify-ticket", "support", "openai", "gpt-4o-mini", 600, 8),
    ("chat-assistant", "support", "anthropic", "claude-3-5-haiku-20241022", 2500, 400),
    ("review-contract", "legal", "openai", "gpt-4o", 12000, 500),
]


@dataclass
class World:
    org_id: str
    org_name: str
    key: str
    functions_url: str
    dashboard_url: str
    emails: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    recommendation_id: str = ""
    alert_id: str = ""
    anomaly_id: str = ""

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, role: str, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.functions_url}{path}", params=params, headers=self.auth(role), timeout=30)
        r.raise_for_status()
        body = r.json()
        return body["data"] if isinstance(body, dict) and "data" in body else body

    def ingest(self, events: list[dict[str, Any]]) -> httpx.Response:
        r = httpx.post(f"{self.functions_url}/ingest", json={"events": events},
                       headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        assert r.status_code == 200, r.text
        return r

    def sign_in_link(self, role: str) -> str:
        port = int(self.functions_url.split(":")[2].split("/")[0])
        with connect() as conn:
            link = login_link(conn, self.emails[role], Settings(functions_port=port), timedelta(minutes=5))
            conn.commit()
        return link


def event(rng: random.Random, at: datetime, workload: tuple | None = None, **extra: Any) -> dict[str, Any]:
    feature, team, provider, model, tin, tout = workload or rng.choice(WORKLOADS)
    return {
        "request_id": str(uuid.uuid4()), "provider": provider, "model": model,
        "input_tokens": max(1, int(tin * rng.uniform(0.5, 1.5))),
        "output_tokens": max(1, int(tout * rng.uniform(0.5, 1.5))),
        "latency_ms": rng.randint(200, 4000), "status": "success" if rng.random() > 0.03 else "error",
        "metadata": {"feature": feature, "team": team, "user_id": f"user-{rng.randint(1, 12)}"},
        "timestamp": at.isoformat(), **extra,
    }


def _usage(world: World, rng: random.Random, now: datetime) -> None:
    """A few hundred calls over this month so far and the same days of last month."""
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    prev = (month - timedelta(days=1)).replace(day=1)
    events: list[dict[str, Any]] = []
    for start in (prev, month):
        for day in range((now - month).days + 1):
            for _ in range(rng.randint(8, 20)):
                at = start + timedelta(days=day, seconds=rng.randint(0, 86_399))
                if at < now - timedelta(minutes=10):
                    events.append(event(rng, at))
    for i in range(0, len(events), 500):
        world.ingest(events[i:i + 500])


def _intelligence(world: World, rng: random.Random, now: datetime, owner_id: uuid.UUID) -> None:
    """An anomaly, a recommendation with a consensus review and an alert, as their jobs write them."""
    hours = [now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=h) for h in range(47, -1, -1)]
    series = [round(rng.uniform(0.8, 1.2), 6) for _ in hours]
    for i in (-6, -5, -4):
        series[i] = round(series[i] * rng.uniform(6, 9), 6)
    with connect(autocommit=True) as conn:
        world.anomaly_id = str(conn.execute(
            "insert into public.anomalies (org_id, metric, dimension, dimension_value, grain, kind, score, severity, "
            "window_start, window_end, expected_value, actual_value, money_involved, status, details) values "
            "(%s, 'cost', 'feature', 'summarize', 'hour', 'spike', 9.4, 'high', %s, %s, 1.0, %s, %s, 'open', %s) "
            "returning id",
            (world.org_id, hours[-6], hours[-3], sum(series[-6:-3]) / 3, round(sum(series[-6:-3]) - 3, 4),
             Jsonb({"series": [{"bucket": h.isoformat(), "value": v} for h, v in zip(hours, series, strict=True)],
                    "expected_series": [1.0, 1.0, 1.0], "grain_seconds": 3600,
                    "method": "seasonal median profile + trailing median, robust z (MAD)"})),
        ).fetchone()["id"])
        savings = round(rng.uniform(150, 400), 2)
        rec = conn.execute(
            "insert into public.recommendations (org_id, category, scope_type, scope_value, fingerprint, title, "
            "description, current_monthly_cost, projected_monthly_cost, estimated_monthly_savings, savings_method, "
            "confidence, priority, risk, effort, implementation_steps, evidence, suggested_rule) values "
            "(%s, 'task_aware_routing', 'feature', 'classify-ticket', %s, 'Route classify-ticket to gpt-4o-mini', "
            "'Short classification prompts get the same answers from a smaller model.', %s, %s, %s, "
            "'price difference on the same tokens', 0.82, 'high', 'low', 'low', %s, %s, %s) returning id",
            (world.org_id, f"fp-{uuid.uuid4().hex[:8]}", savings * 1.25, savings * 0.25, savings,
             Jsonb(["Create the routing rule", "Watch quality scores for a week"]),
             Jsonb({"requests": 1200, "cost_per_request": 0.02}),
             Jsonb({"conditions": {"feature": "classify-ticket"}, "action": {"model": "gpt-4o-mini"}})),
        ).fetchone()
        world.recommendation_id = str(rec["id"])
        run = conn.execute(
            "insert into public.consensus_runs (org_id, recommendation_id, status, triggers, evidence, "
            "reviewed_savings, reviewed_cost, rereview_change, rounds, score, verdict, description, confidence, "
            "adjusted_monthly_savings, savings_source, caveats, dissent, applied, calls, input_tokens, output_tokens, "
            "cost_usd, finished_at) "
            "values (%s, %s, 'completed', array['enterprise_plan'], '{}', %s, %s, 0.2, 2, 0.86, 'accept', "
            "'The panel agrees the smaller model suffices for classification.', 0.8, %s, 'skeptic', "
            "'[\"watch quality\"]', '[]', true, 6, 12000, 1500, 0.0134, now()) returning id",
            (world.org_id, rec["id"], savings, savings * 1.25, round(savings * 0.9, 2)),
        ).fetchone()["id"]
        for rnd, score in ((1, 0.62), (2, 0.86)):
            conn.execute("insert into public.consensus_rounds values (%s, %s, %s, %s, 0.83, 0.9, 0.4)",
                         (run, world.org_id, rnd, score))
            for role, provider, model, verdict in (("analyst", "openai", "gpt-4.1-mini", "accept"),
                                                   ("skeptic", "anthropic", "claude-haiku-4-5",
                                                    "modify" if rnd == 1 else "accept"),
                                                   ("advocate", "openai", "gpt-4.1-mini", "accept")):
                conn.execute(
                    "insert into public.consensus_positions (run_id, org_id, round, role, provider, model, request_id, "
                    "verdict, adjusted_monthly_savings, confidence, key_points, risks) values "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 0.8, %s, '[]')",
                    (run, world.org_id, rnd, role, provider, model, str(uuid.uuid4()), verdict,
                     round(savings * rng.uniform(0.8, 1.0), 2),
                     Jsonb([{"topic": "quality", "stance": "pro", "point": f"{role} round {rnd}"}])),
                )
        conn.execute("update public.recommendations set consensus_run_id = %s where id = %s", (run, rec["id"]))
        world.alert_id = str(conn.execute(
            "insert into public.alert_events (org_id, dedup_key, severity, title, details) values "
            "(%s, %s, 'critical', 'Spend spike on summarize', '{}') returning id",
            (world.org_id, f"spike-{uuid.uuid4().hex[:6]}"),
        ).fetchone()["id"])
    # The real explanations job, LLM off: template explanations grounded in SQL evidence.
    # In its own thread, as in the worker: the browser's driver keeps an event loop on this one.
    offline = Settings(openai_api_key=None, anthropic_api_key=None)
    done: list[str] = []
    job = threading.Thread(target=lambda: done.append(
        run_explanations(JobContext(get_settings().dsn, offline, "dashboard-tests"), orgs=[world.org_id])))
    job.start()
    job.join(120)
    assert done and "2 explained" in done[0], done


@pytest.fixture(scope="session")
def dashboard_url(functions_url: str) -> str:
    if not (get_settings().dashboard_dir / "index.html").is_file():
        pytest.fail("the dashboard is not built: run ./scripts/setup (or cd dashboard && npm ci && npm run build)")
    return functions_url.replace("/functions/v1", "/dashboard/")


@pytest.fixture(scope="module")
def world(dashboard_url: str, functions_url: str) -> World:
    rng = random.Random(uuid.uuid4().int)  # shapes vary per run; the checks compare with the functions
    tag = uuid.uuid4().hex[:8]
    with connect(autocommit=True) as conn:
        org = admin.create_org(conn, f"Dashboard {tag}")
        key = admin.create_key(conn, org.id)
        emails = {role: f"dash-{role}-{tag}@example.com" for role in ("owner", "viewer")}
        users = {role: admin.create_user(conn, email, org.id, role) for role, email in emails.items()}
    SECRETS_SEEN.append(key.key)
    w = World(str(org.id), org.name, key.key, functions_url, dashboard_url, emails)
    from tokentra_core.dev_auth import mint_user_jwt

    w.tokens = {role: mint_user_jwt(get_settings(), users[role].id, emails[role]) for role in emails}
    now = datetime.now(UTC)
    _usage(w, rng, now)
    r = httpx.post(f"{functions_url}/budgets", headers=w.auth("owner"), timeout=30,
                   json={"org_id": w.org_id, "name": "Monthly AI spend", "amount": round(rng.uniform(20, 80), 2),
                         "period": "monthly"})
    assert r.status_code == 201, r.text
    _intelligence(w, rng, now, users["owner"].id)
    return w


# Module scope: Playwright's sync API keeps an event loop running on this thread while it is open, and the
# tests after this module call asyncio.run() (the explanation and consensus jobs), which a running loop refuses.
@pytest.fixture(scope="module")
def browser(dashboard_url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def sign_in(page: Any, world: World, role: str) -> None:
    """Open the one-time link `tokentra users login` prints, as a user would."""
    page.goto(world.sign_in_link(role))
    page.wait_for_selector('[data-page="overview"]')


def settled(page: Any, name: str, shot: str | None = None) -> None:
    """Wait until the page is drawn with no loading state left, and keep a screenshot of it."""
    page.wait_for_selector(f'[data-page="{name}"]')
    page.wait_for_function("() => document.querySelectorAll('[data-state=loading]').length === 0")
    screenshot(page, shot or name)


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def live_broadcaster(dsn: str) -> Iterator[None]:
    """Where pg_cron runs the per-second live usage job nothing is needed; elsewhere the worker would run
    it, and this thread stands in for that schedule."""
    with connect(dsn, autocommit=True) as conn:
        scheduled = conn.execute(
            "select exists (select 1 from pg_extension where extname = 'pg_cron') and exists "
            "(select 1 from private.periodic_jobs where name = 'tokentra-usage-live') as yes").fetchone()["yes"]
        if scheduled:
            scheduled = conn.execute("select exists (select 1 from cron.job where jobname = 'tokentra-usage-live') "
                                     "as yes").fetchone()["yes"]
    stop = threading.Event()

    def tick() -> None:
        with connect(dsn, autocommit=True) as c:
            while not stop.wait(1):
                c.execute("select private.broadcast_live_usage()")

    thread = None if scheduled else threading.Thread(target=tick, daemon=True)
    if thread:
        thread.start()
    yield
    stop.set()
    if thread:
        thread.join(5)


def wait_until(check: Any, timeout: float, step: float = 0.05) -> float:
    """Seconds until check() is true, or AssertionError after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    raise AssertionError(f"not true within {timeout} s")
