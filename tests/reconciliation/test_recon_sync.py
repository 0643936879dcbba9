"""The provider billing sync against local servers speaking both providers' admin report APIs, fed from
generated months whose truth is known: totals equal the ledger exactly, per day, model, breakdown and
category; a re-sync replaces and never duplicates; a run that fails or is killed mid-pagination resumes
exactly once; rate limits and server errors are retried; a refused key is recorded and the other
connections still sync."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from threading import Event, Thread
from typing import Any

import pytest
from recon_helpers import anthropic_usage_truth, cost_truth, month, openai_usage_truth

from tokentra_core.db import connect
from tokentra_core.settings import Settings
from tokentra_dev.testing.provider_admin_servers import (
    AnthropicUsageRecord,
    Fault,
    OpenAICostRecord,
    OpenAIUsageRecord,
    ProviderAdminServer,
)
from tokentra_worker.jobs import JobContext
from tokentra_worker.provider_sync import run_provider_sync

CATEGORIES = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "cache_write_5m_tokens",
              "cache_write_1h_tokens", "output_tokens", "input_audio_tokens", "output_audio_tokens", "requests",
              "web_search_requests")


def synced_usage(dsn: str, org_id: str, provider: str) -> dict[tuple[Any, ...], dict[str, int]]:
    """The daily view as (day, model, project, key, tier, batch or context window) -> nonzero categories."""
    with connect(dsn) as conn:
        rows = conn.execute("select * from private.provider_billed_usage_daily where org_id = %s and provider = %s",
                            (org_id, provider)).fetchall()
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in rows:
        last = r["batch"] if provider == "openai" else r["context_window"]
        key = (r["day"].isoformat(), r["model"], r["project_id"], r["api_key_id"], r["service_tier"], last)
        assert key not in out, f"the daily view repeats {key}"
        out[key] = {c: r[c] for c in CATEGORIES if r[c]}
    return out


def nonzero(truth: dict[tuple[Any, ...], dict[str, int]]) -> dict[tuple[Any, ...], dict[str, int]]:
    return {k: {c: v for c, v in t.items() if v} for k, t in truth.items()}


def synced_cost(dsn: str, org_id: str) -> dict[tuple[Any, ...], Decimal]:
    with connect(dsn) as conn:
        rows = conn.execute("select provider, day, line_item, project_id, sum(amount_usd) as usd "
                            "from private.provider_billed_cost_daily where org_id = %s group by 1, 2, 3, 4",
                            (org_id,)).fetchall()
    return {(r["provider"], r["day"].isoformat(), r["line_item"], r["project_id"]): r["usd"] for r in rows}


def row_counts(dsn: str, org_id: str) -> tuple[int, int]:
    with connect(dsn) as conn:
        usage = conn.execute("select count(*) as n from private.provider_billed_usage where org_id = %s",
                             (org_id,)).fetchone()
        cost = conn.execute("select count(*) as n from private.provider_billed_cost where org_id = %s",
                            (org_id,)).fetchone()
    assert usage is not None and cost is not None
    return usage["n"], cost["n"]


def sync_state(dsn: str, connection_id: Any) -> dict[str, dict[str, Any]]:
    with connect(dsn) as conn:
        rows = conn.execute("select * from private.provider_sync_state where connection_id = %s",
                            (connection_id,)).fetchall()
    return {r["endpoint"]: r for r in rows}


def assert_matches(dsn: str, org_id: str, ledger: Any) -> None:
    assert synced_usage(dsn, org_id, "openai") == nonzero(openai_usage_truth(ledger))
    assert synced_usage(dsn, org_id, "anthropic") == nonzero(anthropic_usage_truth(ledger))
    assert synced_cost(dsn, org_id) == cost_truth(ledger)


@pytest.mark.parametrize(("seed", "width"), [(11, "1h"), (4242, "1d")])
def test_sync_equals_the_ledger_exactly(dsn, admin_server, connect_org, sync, seed, width):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    admin_server.ledger = month(seed, now)
    org = connect_org(admin_server)
    summary = sync(org.org_id, now=now, reconciliation_page_buckets=rng.randint(3, 9),
                   reconciliation_bucket_width=width)
    assert "0 failed" in summary
    assert_matches(dsn, org.org_id, admin_server.ledger)
    # per category as well: the truth is not trivially empty, and the views add up to the ledger's totals
    ledger = admin_server.ledger
    with connect(dsn) as conn:
        totals = conn.execute(
            "select provider, sum(input_tokens + cached_input_tokens + cache_write_tokens) as inp, "
            "sum(cache_write_5m_tokens) as w5, sum(cache_write_1h_tokens) as w1, sum(output_tokens) as out "
            "from private.provider_billed_usage_daily where org_id = %s group by provider", (org.org_id,)).fetchall()
    by = {t["provider"]: t for t in totals}
    assert by["openai"]["inp"] == sum(r.input_tokens for r in ledger.openai_usage) > 0
    assert by["openai"]["out"] == sum(r.output_tokens for r in ledger.openai_usage) > 0
    assert by["anthropic"]["w5"] == sum(r.cache_creation_5m for r in ledger.anthropic_usage) > 0
    assert by["anthropic"]["w1"] == sum(r.cache_creation_1h for r in ledger.anthropic_usage) > 0
    assert by["anthropic"]["inp"] == sum(r.uncached_input_tokens + r.cache_read_input_tokens + r.cache_creation_5m
                                         + r.cache_creation_1h for r in ledger.anthropic_usage)
    # every page was kept for audit, with what was asked
    with connect(dsn) as conn:
        pages = conn.execute("select endpoint, params, body from private.provider_report_pages where org_id = %s",
                             (org.org_id,)).fetchall()
    assert len(pages) == len(admin_server.pages_served())
    assert {p["endpoint"] for p in pages} == {
        "organization/usage/completions", "organization/usage/embeddings", "organization/costs",
        "organizations/usage_report/messages", "organizations/cost_report"}
    assert all(p["body"]["data"] is not None for p in pages)
    completions = [p for p in pages if p["endpoint"] == "organization/usage/completions"]
    assert completions[0]["params"]["bucket_width"] == width
    assert set(completions[0]["params"]["group_by"]) == {"model", "project_id", "api_key_id", "batch", "service_tier"}


def test_resync_replaces_and_follows_revisions(dsn, admin_server, connect_org, sync):
    now = datetime.now(UTC)
    rng = random.Random(7)
    admin_server.ledger = month(7, now, days=8)
    org = connect_org(admin_server)
    sync(org.org_id, now=now, reconciliation_page_buckets=5, reconciliation_backfill_days=8)
    counts = row_counts(dsn, org.org_id)
    sync(org.org_id, now=now, reconciliation_page_buckets=4, reconciliation_backfill_days=8)
    assert row_counts(dsn, org.org_id) == counts, "a re-sync must replace rows, never add to them"
    assert_matches(dsn, org.org_id, admin_server.ledger)
    states = sync_state(dsn, org.openai)
    assert all(s["synced_through"] is not None and s["sync_id"] is None for s in states.values())

    # The provider revises yesterday: some records vanish, others appear (new groups), amounts change.
    ledger = admin_server.ledger
    yesterday = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    recent = [r for r in ledger.openai_usage if r.ts >= yesterday]
    for gone in rng.sample(recent, k=min(len(recent), 5)):
        ledger.openai_usage.remove(gone)
    ledger.openai_usage.append(OpenAIUsageRecord(yesterday + timedelta(hours=3), "gpt-5-2025-08-07", "proj_new",
                                                 "key_new", input_tokens=1234, output_tokens=56))
    ledger.anthropic_usage = [r for r in ledger.anthropic_usage if r.ts < yesterday]
    ledger.anthropic_usage.append(AnthropicUsageRecord(yesterday + timedelta(hours=5), "claude-sonnet-4-5-20250929",
                                                       "key_late", None, uncached_input_tokens=10,
                                                       cache_creation_1h=20, output_tokens=30))
    ledger.openai_costs.append(OpenAICostRecord(now - timedelta(minutes=30), "gpt-5-2025-08-07, input", None,
                                                Decimal("0.000000001")))
    sync(org.org_id, now=now + timedelta(minutes=15))
    assert_matches(dsn, org.org_id, ledger)


def test_a_failure_mid_pagination_resumes_exactly_once(dsn, admin_server, connect_org, sync):
    now = datetime.now(UTC)
    admin_server.ledger = month(99, now, days=12)
    org = connect_org(admin_server)
    admin_server.inject(Fault(500, times=10_000, path="usage/completions", page=2),
                        Fault(503, times=10_000, path="cost_report", page=1))
    summary = sync(org.org_id, now=now, reconciliation_page_buckets=3, reconciliation_max_attempts=2,
                   reconciliation_backfill_days=12)
    assert "2 failed" in summary
    state = sync_state(dsn, org.openai)["organization/usage/completions"]
    assert state["sync_id"] is not None and state["next_page"] is not None and state["pages_in_window"] == 2
    assert "HTTP 500" in state["last_error"] and state["consecutive_failures"] == 1
    assert sync_state(dsn, org.anthropic)["organizations/cost_report"]["pages_in_window"] == 1
    assert sync_state(dsn, org.openai)["organization/costs"]["last_error"] is None  # the others went on

    admin_server.clear_faults()
    sync(org.org_id, now=now, reconciliation_page_buckets=3, reconciliation_max_attempts=2,
         reconciliation_backfill_days=12)
    assert_matches(dsn, org.org_id, admin_server.ledger)
    served = [r.page for r in admin_server.pages_served("usage/completions")]
    assert served == list(range(len(served))) and len(served) > 3, "each page read once, in order"
    state = sync_state(dsn, org.openai)["organization/usage/completions"]
    assert state["last_error"] is None and state["consecutive_failures"] == 0 and state["sync_id"] is None


def test_a_cursor_the_provider_no_longer_takes_restarts_its_window(dsn, admin_server, connect_org, sync):
    now = datetime.now(UTC)
    admin_server.ledger = month(17, now, days=9)
    org = connect_org(admin_server)
    admin_server.inject(Fault(500, times=10_000, path="usage_report/messages", page=2))
    sync(org.org_id, now=now, reconciliation_page_buckets=2, reconciliation_max_attempts=1,
         reconciliation_backfill_days=9)
    assert sync_state(dsn, org.anthropic)["organizations/usage_report/messages"]["pages_in_window"] == 2
    admin_server.clear_faults()
    # pages of another size: the saved cursor belongs to another query and the provider refuses it
    summary = sync(org.org_id, now=now, reconciliation_page_buckets=4, reconciliation_backfill_days=9)
    assert "0 failed" in summary
    refused = [r for r in admin_server.requests if r.path.endswith("messages") and r.status == 400]
    assert len(refused) == 1
    assert_matches(dsn, org.org_id, admin_server.ledger)


def test_a_page_with_more_to_come_but_no_cursor_keeps_the_window_open(dsn, admin_server, connect_org, sync):
    """A report that says has_more without next_page cannot be followed: nothing of the window is dropped."""
    now = datetime.now(UTC)
    admin_server.ledger = month(23, now, days=4)
    org = connect_org(admin_server)
    sync(org.org_id, now=now, reconciliation_backfill_days=4)
    before = synced_usage(dsn, org.org_id, "openai")
    admin_server.truncate_cursors = True
    summary = sync(org.org_id, now=now + timedelta(minutes=15), reconciliation_page_buckets=1)
    assert "failed" in summary and "0 failed" not in summary
    state = sync_state(dsn, org.openai)["organization/usage/completions"]
    assert "has_more without a next_page" in state["last_error"] and state["sync_id"] is not None
    assert synced_usage(dsn, org.org_id, "openai") == before


def test_rate_limits_and_server_errors_are_retried(dsn, admin_server, connect_org, sync):
    now = datetime.now(UTC)
    admin_server.ledger = month(5, now, days=6)
    org = connect_org(admin_server)
    admin_server.inject(Fault(429, times=2, retry_after="0.05", path="usage/completions"),
                        Fault(529, times=1, path="usage_report/messages", page=1),
                        Fault(502, times=2, path="organization/costs"),
                        Fault(429, times=1, retry_after="0", path="cost_report"))
    summary = sync(org.org_id, now=now, reconciliation_page_buckets=2, reconciliation_backfill_days=6)
    assert "0 failed" in summary
    assert_matches(dsn, org.org_id, admin_server.ledger)
    statuses = defaultdict(list)
    for r in admin_server.requests:
        statuses[r.path.rsplit("/", 1)[1]].append(r.status)
    assert statuses["completions"][:3] == [429, 429, 200]
    assert statuses["costs"][:3] == [502, 502, 200]
    assert 529 in statuses["messages"] and statuses["cost_report"][:2] == [429, 200]
    assert all(f.times == 0 for f in admin_server.faults)


def test_a_refused_key_is_recorded_and_the_others_still_sync(dsn, admin_server, connect_org, sync, caplog):
    now = datetime.now(UTC)
    admin_server.ledger = month(3, now, days=3)
    wrong_openai, wrong_anthropic = "sk-admin-WRONG-0123456789abcdef", "sk-ant-admin01-WRONG-0123456789"
    bad = connect_org(admin_server, openai_key=wrong_openai, anthropic_key=wrong_anthropic)
    good = connect_org(admin_server)
    with ProviderAdminServer() as gone:
        unreachable = connect_org(gone)
    summary = sync(bad.org_id, good.org_id, unreachable.org_id, now=now, reconciliation_backfill_days=3)
    assert "10 failed" in summary
    assert_matches(dsn, good.org_id, admin_server.ledger)
    for connection, provider in ((bad.openai, "openai"), (bad.anthropic, "anthropic")):
        states = sync_state(dsn, connection)
        assert len(states) == (3 if provider == "openai" else 2)
        for s in states.values():
            assert s["last_error"].startswith(provider) and "HTTP 401" in s["last_error"]
            assert s["synced_through"] is None
    assert "invalid x-api-key" in sync_state(dsn, bad.anthropic)["organizations/cost_report"]["last_error"]
    # a host that does not answer is tried on one endpoint only, the others noted as not tried
    states = sync_state(dsn, unreachable.openai)
    assert "no answer" in states["organization/usage/completions"]["last_error"]
    assert "not tried" in states["organization/costs"]["last_error"]
    # 401 is not retried, and the first refusal stops the connection's other endpoints from trying
    assert sum(1 for r in admin_server.requests if r.status == 401) == 2
    assert row_counts(dsn, bad.org_id) == (0, 0)
    logged = caplog.text + "".join(str(s["last_error"]) for c in (bad.openai, bad.anthropic)
                                   for s in sync_state(dsn, c).values())
    for secret in (wrong_openai, wrong_anthropic, "WRONG-0123"):
        assert secret not in logged


def test_a_stopping_worker_leaves_its_cursor_and_the_next_run_resumes(dsn, admin_server, connect_org, sync):
    """SIGTERM (the worker's stop event) mid-window: the page in hand is stored, nothing is recorded as an
    error, and the next run goes on from the cursor."""
    now = datetime.now(UTC)
    admin_server.ledger = month(41, now, days=6)
    org = connect_org(admin_server)
    admin_server.inject(Fault(None, times=1, path="usage/completions", page=1, delay=1.0))
    stop = Event()
    settings = Settings(reconciliation_page_buckets=2, reconciliation_backfill_days=6)
    done: list[str] = []
    worker = Thread(target=lambda: done.append(run_provider_sync(
        JobContext(dsn=dsn, settings=settings, worker="test", stop=stop), now=now, orgs=[org.org_id])))
    worker.start()
    deadline = time.monotonic() + 30
    while not admin_server.faults[0].times == 0 and time.monotonic() < deadline:
        time.sleep(0.02)  # until the second page is in flight
    stop.set()
    worker.join(30)
    assert done and "0 failed" in done[0]
    state = sync_state(dsn, org.openai)["organization/usage/completions"]
    assert state["pages_in_window"] == 2 and state["next_page"] is not None and state["last_error"] is None
    assert "organization/costs" not in sync_state(dsn, org.openai), "nothing else was started after the stop"
    sync(org.org_id, now=now, reconciliation_page_buckets=2, reconciliation_backfill_days=6)
    assert_matches(dsn, org.org_id, admin_server.ledger)
    served = [r.page for r in admin_server.pages_served("usage/completions")]
    assert served == list(range(len(served))), "each page read once"


def test_a_killed_worker_resumes_mid_window_exactly_once(dsn, admin_server, connect_org, sync):
    """`tokentra worker --once reconciliation` is killed while a page is in flight; the next run resumes."""
    now = datetime.now(UTC)
    admin_server.ledger = month(31, now, days=8)
    org = connect_org(admin_server)
    admin_server.inject(Fault(None, times=1, path="usage/completions", page=3, delay=60))
    # Connections of other tests point at servers gone by now: they fail fast rather than back off.
    env = {**os.environ, "DATABASE_URL": dsn, "TOKENTRA_RECONCILIATION_PAGE_BUCKETS": "2",
           "TOKENTRA_RECONCILIATION_BACKFILL_DAYS": "8",
           "TOKENTRA_RECONCILIATION_RETRY_BASE_SECONDS": "0.01", "TOKENTRA_RECONCILIATION_MAX_ATTEMPTS": "2",
           # the killed run's claim must not keep a later `--once reconciliation` waiting for a minute
           "TOKENTRA_WORKER_LEASE_SECONDS": "3"}
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "tokentra"), "worker", "--once",
                             "reconciliation"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = sync_state(dsn, org.openai).get("organization/usage/completions")
            if state and state["pages_in_window"] == 3:
                break
            assert proc.poll() is None, "the worker ended before the stalled page"
            time.sleep(0.05)
        else:
            pytest.fail("the worker never reached the stalled page")
        time.sleep(0.2)  # it is now waiting on page 3
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    state = sync_state(dsn, org.openai)["organization/usage/completions"]
    assert state["pages_in_window"] == 3 and state["next_page"] is not None
    sync_id = state["sync_id"]
    sync(org.org_id, now=now, reconciliation_page_buckets=2, reconciliation_backfill_days=8)
    assert_matches(dsn, org.org_id, admin_server.ledger)
    with connect(dsn) as conn:
        cursors = [r["page_cursor"] for r in conn.execute(
            "select page_cursor from private.provider_report_pages where sync_id = %s order by id",
            (sync_id,)).fetchall()]
    assert len(cursors) >= 4 and len(cursors) == len(set(cursors)), "every page of the window stored once"


def test_an_unexpected_failure_is_recorded_without_anything_key_shaped(dsn, admin_server, connect_org, sync,
                                                                       caplog):
    # A page Postgres refuses (a NUL escape it cannot store as text) fails with an error that quotes the page
    # around it: the key-shaped text in front of it must not reach the recorded error or the log.
    leaked = "sk-proj-LEAKED-0123456789abcdef"
    now = datetime.now(UTC)
    admin_server.ledger.openai_usage.append(OpenAIUsageRecord(now - timedelta(hours=30), "gpt-4o-2024-08-06",
                                                              project_id=f"{leaked}\x00", input_tokens=10))
    org = connect_org(admin_server)
    sync(org.org_id, now=now, reconciliation_backfill_days=3)
    states = sync_state(dsn, org.openai)
    message = states["organization/usage/completions"]["last_error"]
    assert message.startswith("sync failed: ") and "sk-[redacted]" in message, message
    for text in (caplog.text, *(str(s["last_error"]) for s in states.values())):
        assert "LEAKED" not in text
