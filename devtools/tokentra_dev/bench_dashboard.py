"""`tokentra bench dashboard`: the overview page in headless Chromium over the query bench's data.

Reuses the database `tokentra bench query --keep` leaves (tokentra_bench_query: one large organization
with N rows over 30 days, rolled up), or builds one the same way with --rows. For each run a fresh
browser context (no cache) opens the overview already signed in and records, from the page itself:
first contentful paint, the first meaningful paint (the month's spend shown) and the moment every chart
has drawn its marks and no section is loading. The baseline, measured in the same run, is the overview
function answering the same question over HTTP: the page can never be faster than it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from rich.console import Console

from tokentra_cli import admin
from tokentra_cli.functions_server import start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.dev_auth import mint_user_jwt
from tokentra_core.settings import get_settings
from tokentra_dev import bench_query

console = Console(soft_wrap=True)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Marks taken in the page: MutationObserver callbacks, relative to navigation start.
PROBE = """
(() => {
  const marks = {};
  window.__tokentraMarks = marks;
  // A chart has drawn when its SVG holds a mark: the overview's own (data-mark) or Recharts' classes.
  const drawn = (name) => document.querySelector(`[data-chart="${name}"]`)?.querySelectorAll(
      'svg [data-mark], .recharts-wrapper :is(.recharts-bar-rectangle, .recharts-line-curve, .recharts-area-area)'
  ).length > 0;
  new MutationObserver(() => {
    const now = performance.now();
    const spend = document.querySelector('[data-kpi="spend"] .kpi-value');
    if (!marks.meaningful && spend && spend.textContent.startsWith('$')) marks.meaningful = now;
    if (!marks.charts && drawn('spend-by-day') && drawn('providers')
        && document.querySelectorAll('[data-state=loading]').length === 0
        && !/…/.test(document.querySelector('[data-kpi="forecast"] .kpi-value')?.textContent ?? '')) {
      marks.charts = now;
    }
  }).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  // Diagnostics only (never part of a mark): main-thread tasks over 50 ms, where a slow page spends its time.
  window.__tokentraLongTasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__tokentraLongTasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) { /* no long task timing in this browser */ }
})();
"""
# The median run's timeline, printed so a slow figure says where the time went.
TIMELINE = """
() => ({
  nav: (() => { const n = performance.getEntriesByType('navigation')[0];
                return n ? [n.requestStart, n.responseEnd, n.domContentLoadedEventEnd] : null; })(),
  resources: performance.getEntriesByType('resource').map((e) => [
    e.name.replace(location.origin, '').replace(/[?].*/, ''), e.startTime, e.responseEnd, e.encodedBodySize]),
  longTasks: window.__tokentraLongTasks ?? [],
})
"""


def _database(rows: int) -> tuple[str, bool]:
    """The query bench's database, and whether this run built it."""
    base = get_settings().dsn
    dsn = make_conninfo(**{**conninfo_to_dict(base), "dbname": bench_query.BENCH_DB})
    try:
        with connect(dsn) as conn:
            found = conn.execute("select count(*) as n from public.usage_records").fetchone()["n"]
        console.print(f"data        {found:,} usage rows in {bench_query.BENCH_DB} (`tokentra bench query --keep`)")
        return dsn, False
    except psycopg.OperationalError:
        pass
    console.print(f"data        {bench_query.BENCH_DB} absent: loading {rows:,} rows as `bench query` does")
    dsn = bench_query._fresh_database(base)
    with connect(dsn) as conn:
        org = admin.create_org(conn, "bench-large")
        admin.create_user(conn, f"bench-{uuid.uuid4().hex[:8]}@example.com", org.id, "owner")
        keys = [admin.create_key(conn, org.id, name=f"key-{i}") for i in range(5)]
        conn.commit()
        bench_query._load(conn, org.id, rows, 2000, [k.id for k in keys], datetime.now(UTC) - timedelta(days=30),
                          "b-", chunks=max(1, rows // 250_000))
        conn.execute("analyze public.usage_records")
        conn.commit()
        bench_query._refresh_all(conn)
    return dsn, True


def _owner(dsn: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    with connect(dsn) as conn:
        row = conn.execute(
            "select o.id as org, u.id as user_id, u.email from public.organizations o "
            "join public.organization_members m on m.org_id = o.id and m.role = 'owner' "
            "join auth.users u on u.id = m.user_id where o.name = 'bench-large' order by o.created_at desc limit 1"
        ).fetchone()
    return row["org"], row["user_id"], row["email"]


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _print_timeline(result: dict[str, Any]) -> None:
    """Requests (start to end, ms since navigation, bytes on the wire) and long tasks of one run."""
    t = result["timeline"]
    console.print(f"timeline    median run: fcp {result['fcp'] or 0:.0f}, meaningful {result['meaningful']:.0f}, "
                  f"charts {result['charts']:.0f} ms; document {t['nav'][0]:.0f}-{t['nav'][1]:.0f}, "
                  f"DOMContentLoaded {t['nav'][2]:.0f}" if t["nav"] else "timeline    (no navigation entry)")
    for name, start, end, size in sorted(t["resources"], key=lambda r: r[1]):
        console.print(f"  {start:6.0f} - {end:6.0f} ms  {size / 1024:7.1f} kB  {name}")
    tasks = t["longTasks"]
    console.print(f"  long tasks: {len(tasks)}, {sum(d for _, d in tasks):.0f} ms in all: "
                  + ", ".join(f"{s:.0f}+{d:.0f}" for s, d in tasks))


def run(rows: int, runs: int, keep: bool) -> None:
    from playwright.sync_api import sync_playwright

    settings = get_settings()
    if not (settings.dashboard_dir / "index.html").is_file():
        raise SystemExit("the dashboard is not built: run ./scripts/setup (or cd dashboard && npm run build)")
    dsn, built = _database(rows)
    org, user_id, email = _owner(dsn)
    token = mint_user_jwt(settings, user_id, email, 3600)
    session = {"accessToken": token, "userId": str(user_id), "email": email, "expiresAt": int(time.time()) + 3600}
    proc, url = start_functions(settings.functions_port + 100, env={"DATABASE_URL": dsn})
    try:
        page_url = url.replace("/functions/v1", f"/dashboard/#/overview?org={org}")
        headers = {"Authorization": f"Bearer {token}"}
        api: list[float] = []
        with httpx.Client(headers=headers, timeout=60) as client:
            for i in range(runs + 3):
                t0 = time.perf_counter()
                client.get(f"{url}/dashboard/overview", params={"org_id": str(org)}).raise_for_status()
                if i >= 3:
                    api.append((time.perf_counter() - t0) * 1000)
        results: list[dict[str, Any]] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            for i in range(runs + 1):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                stored = json.dumps(json.dumps(session))
                context.add_init_script(f"localStorage.setItem('tokentra.session', {stored});")
                context.add_init_script(PROBE)
                page = context.new_page()
                page.goto(page_url)
                page.wait_for_function("() => window.__tokentraMarks && window.__tokentraMarks.charts", timeout=60_000)
                marks = page.evaluate("() => window.__tokentraMarks")
                fcp = page.evaluate(
                    "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
                if i > 0:  # the first run warms the server's pool and caches; each later one is a cold browser
                    results.append({"fcp": fcp, **marks, "timeline": page.evaluate(TIMELINE)})
                context.close()
            browser.close()
        meaningful = [r["meaningful"] for r in results]
        charts = [r["charts"] for r in results]
        fcp = [r["fcp"] for r in results if r["fcp"] is not None]
        console.print(f"runs        {runs} cold browser contexts (after one warm-up), overview of organization {org}")
        for name, values in (("baseline    GET /dashboard/overview (HTTP)", api),
                             ("page        first contentful paint", fcp),
                             ("page        first meaningful paint", meaningful),
                             ("page        all charts drawn", charts)):
            console.print(f"{name:<44} p50 {_pct(values, 50):7.1f} ms   p95 {_pct(values, 95):7.1f} ms")
        _print_timeline(sorted(results, key=lambda r: r["charts"])[len(results) // 2])
        verdict = "met" if _pct(charts, 95) < 1000 else "MISSED"
        console.print(f"ratio       charts drawn / API answer, p50: {_pct(charts, 50) / _pct(api, 50):.1f}x; "
                      f"target all charts drawn under 1,000 ms at p95: {verdict}")
    finally:
        stop_functions(proc)
        if built and not keep:
            bench_query._drop_database(get_settings().dsn)
