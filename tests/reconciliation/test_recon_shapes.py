"""Report pages in every form the providers' references leave open are read the same way, and a page that is
not a report is refused with a message naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import pytest

from tokentra_core.settings import Settings
from tokentra_worker.provider_sync import (
    ENDPOINTS,
    ReportError,
    normalize_page,
    openai_line_item,
    plan_window,
    retry_after_seconds,
)

OPENAI = {e.path: e for e in ENDPOINTS["openai"]}
ANTHROPIC = {e.path: e for e in ENDPOINTS["anthropic"]}
DAY = 1_795_219_200  # a UTC midnight


def page(*results: dict, start: object = DAY, end: object = DAY + 86_400, anthropic: bool = False) -> dict:
    bucket = ({"starting_at": start, "ending_at": end} if anthropic else {"start_time": start, "end_time": end})
    return {"data": [{**bucket, "results": list(results)}], "has_more": False, "next_page": None}


def test_openai_input_is_split_into_uncached_cached_and_cache_writes():
    usage, _ = normalize_page(OPENAI["organization/usage/completions"], page(
        {"input_tokens": 1000, "input_cached_tokens": 300, "output_tokens": 7, "num_model_requests": 2,
         "model": "gpt-4o", "batch": False, "service_tier": "default"},
        {"input_tokens": 500, "input_cached_tokens": 100, "input_cache_write_tokens": 50, "output_tokens": 1,
         "num_model_requests": 1, "batch": "true", "output_reasoning_tokens": 9}))
    assert [(u["input_tokens"], u["cached_input_tokens"], u["cache_write_tokens"]) for u in usage] == [
        (700, 300, 0), (350, 100, 50)]
    assert usage[0]["reasoning_tokens"] is None and usage[1]["reasoning_tokens"] == 9
    assert usage[1]["batch"] is True and usage[0]["requests"] == 2
    assert usage[0]["bucket_start"] == datetime.fromtimestamp(DAY, UTC).isoformat()


def test_anthropic_cache_writes_per_ttl_or_flat_and_web_search_either_place():
    usage, _ = normalize_page(ANTHROPIC["organizations/usage_report/messages"], page(
        {"uncached_input_tokens": 10, "cache_read_input_tokens": 20, "output_tokens": 30, "workspace_id": "w",
         "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6},
         "server_tool_use": {"web_search_requests": 3}},
        {"uncached_input_tokens": 1, "cache_creation_input_tokens": 8, "web_search_requests": 2},
        start="2026-11-18T00:00:00Z", end="2026-11-19T00:00:00+00:00", anthropic=True))
    first, flat = usage
    assert (first["cache_write_tokens"], first["cache_write_5m_tokens"], first["cache_write_1h_tokens"]) == (10, 4, 6)
    assert (flat["cache_write_tokens"], flat["cache_write_5m_tokens"], flat["cache_write_1h_tokens"]) == (8, 0, 0)
    assert (first["web_search_requests"], flat["web_search_requests"]) == (3, 2)
    assert first["project_id"] == "w" and first["requests"] is None
    assert first["bucket_end"] == "2026-11-19T00:00:00+00:00"


def test_amounts_are_exact_whatever_their_form():
    _, openai = normalize_page(OPENAI["organization/costs"], page(
        {"amount": {"value": Decimal("0.123456789012345"), "currency": "USD"}, "line_item": "o3, cached input"},
        {"amount": {"value": "2.5", "currency": "usd"}, "line_item": "web search tool calls", "project_id": "p"},
        {"amount": 7, "line_item": None}, start=str(DAY)))
    assert [(c["amount"], c["currency"], c["cost_type"], c["model"], c["token_type"]) for c in openai] == [
        ("0.123456789012345", "usd", "tokens", "o3", "cached input"), ("2.5", "usd", "web_search", None, None),
        ("7", "usd", "other", None, None)]
    _, anthropic = normalize_page(ANTHROPIC["organizations/cost_report"], page(
        {"amount": "123.45", "currency": "USD", "description": "Sonnet input", "model": "claude-sonnet-4-5",
         "cost_type": "tokens", "token_type": "uncached_input_tokens"},
        {"amount": 5, "cost_type": "code_execution"}, {"amount": "1", "cost_type": "session_hours"},
        start="2026-11-18T00:00:00Z", end="2026-11-19T00:00:00Z", anthropic=True))
    assert [(Decimal(c["amount"]), c["cost_type"]) for c in anthropic] == [
        (Decimal("1.2345"), "tokens"), (Decimal("0.05"), "code_execution"), (Decimal("0.01"), "other")]


@pytest.mark.parametrize(("line_item", "expected"), [
    ("gpt-4o-2024-08-06, input", ("gpt-4o-2024-08-06", "tokens", "input")),
    ("ft:gpt-4o-mini:acme::abc, batch output", ("ft:gpt-4o-mini:acme::abc", "tokens", "batch output")),
    ("Code Interpreter sessions", (None, "code_execution", None)),
    ("Image models", (None, "other", None)),
    (None, (None, "other", None)),
])
def test_openai_line_items(line_item, expected):
    assert openai_line_item(line_item) == expected


@pytest.mark.parametrize(("body", "named"), [
    ({"object": "page"}, "data"),
    ({"data": [{"end_time": DAY, "results": []}]}, "start_time"),
    ({"data": [{"start_time": "yesterday", "end_time": DAY, "results": []}]}, "start_time"),
    (page({"input_tokens": "many"}), "input_tokens"),
    (page({"input_tokens": 1, "batch": "maybe"}), "batch"),
    (page({"amount": {"value": "NaN"}}), "amount"),
])
def test_a_page_that_is_not_a_report_is_refused_naming_the_field(body, named):
    endpoint = OPENAI["organization/costs"] if "amount" in str(body) else OPENAI["organization/usage/completions"]
    with pytest.raises(ReportError, match=named):
        normalize_page(endpoint, body)


def test_retry_after_in_seconds_or_as_a_date_is_capped():
    settings = Settings(reconciliation_retry_max_seconds=30)
    assert retry_after_seconds("2", 9.0, settings) == 2.0
    assert retry_after_seconds("3600", 9.0, settings) == 30.0
    assert retry_after_seconds(None, 9.0, settings) == 9.0
    assert retry_after_seconds("soon", 9.0, settings) == 9.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 <= retry_after_seconds(later, 9.0, settings) <= 20


def test_windows_backfill_then_resync_recent_days_and_cover_gaps():
    settings = Settings(reconciliation_backfill_days=31, reconciliation_resync_days=2)
    now = datetime(2026, 12, 3, 10, 17, 42, tzinfo=UTC)
    midnight = datetime(2026, 12, 3, tzinfo=UTC)
    assert plan_window(None, now, settings) == (midnight - timedelta(days=31), now.replace(second=0))
    assert plan_window(now - timedelta(minutes=15), now, settings)[0] == midnight - timedelta(days=2)
    # a worker down for ten days syncs from where it stopped
    assert plan_window(now - timedelta(days=10), now, settings)[0] == midnight - timedelta(days=10)
