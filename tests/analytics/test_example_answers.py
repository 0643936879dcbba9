"""The analysts' example queries give the right numbers, not only some rows: error waste counts a model's
dated snapshot and its bare name as one model, and cache savings are net of what writing the cache cost.
Usage goes through the real ingest function; each query runs as the organization's analyst login."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from analytics_fixtures import event, ingest
from test_analysts import SQL_DIR, analyst_conn, create_analyst

from tokentra_core.db import connect


def _round6(x: Decimal) -> Decimal:
    """Round as Postgres' round(numeric, 6) does: half away from zero."""
    return (
        x.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        if x >= 0
        else -(-x).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    )


def _today(rng: random.Random) -> datetime:
    """A moment of the last ten minutes, never before today's UTC midnight (the queries group by day)."""
    now = datetime.now(UTC)
    return max(now - timedelta(seconds=rng.randint(1, 600)), now.replace(hour=0, minute=0, second=0, microsecond=0))


@pytest.mark.parametrize("seed", [3, 8, 21])
def test_error_waste_gives_one_error_rate_per_model(dsn, functions_url, org_a, analyst_roles, seed):
    rng = random.Random(seed)
    successes, failures = rng.randint(2, 30), rng.randint(1, 6)
    # The provider names the snapshot in a successful response; a failed call only knows what it asked.
    events = [
        event(_today(rng), model="gpt-4o-2024-08-06", output_tokens=rng.randint(1, 400), cached_tokens=0)
        for _ in range(successes)
    ]
    events += [
        event(_today(rng), model="gpt-4o", status="error", output_tokens=0, cached_tokens=0, error_code="server_error")
        for _ in range(failures)
    ]
    rng.shuffle(events)
    ingest(functions_url, org_a, events)

    role = create_analyst(dsn, org_a.id, analyst_roles)
    with analyst_conn(role) as conn:
        rows = conn.execute((SQL_DIR / "error_waste.sql").read_text()).fetchall()
    assert [r["canonical_model"] for r in rows] == ["gpt-4o"], rows
    (row,) = rows
    assert (row["calls"], row["failed_calls"]) == (successes + failures, failures)
    assert row["error_rate_pct"] == (Decimal(100 * failures) / (successes + failures)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def test_cache_savings_are_net_of_the_cache_write_premium(dsn, functions_url, org_a, analyst_roles):
    rng = random.Random(5)
    model = "claude-sonnet-4-5"
    events = []
    for _ in range(rng.randint(5, 15)):
        written = rng.choice([0, 0, rng.randint(1000, 20000)])
        read = rng.choice([0, rng.randint(1000, 20000)])
        events.append(
            event(
                _today(rng),
                provider="anthropic",
                model=model,
                input_tokens=written + read + rng.randint(10, 500),
                cached_tokens=read,
                cache_write_tokens=written,
                output_tokens=rng.randint(10, 300),
            )
        )
    # a prompt written to the cache and never read again: a loss, which net savings must show
    events.append(
        event(
            _today(rng),
            provider="anthropic",
            model=model,
            input_tokens=50_000,
            cached_tokens=0,
            cache_write_tokens=49_000,
            output_tokens=10,
        )
    )
    ingest(functions_url, org_a, events)

    with connect(dsn) as conn:
        p = conn.execute(
            "select p.input_mtok, p.cache_read_mtok, p.cache_write_mtok from public.usage_records u "
            "join private.model_prices p on p.id = u.price_id where u.org_id = %s limit 1",
            (org_a.id,),
        ).fetchone()
    assert p["cache_write_mtok"] > p["input_mtok"] > p["cache_read_mtok"]  # the premium this test is about
    read = sum(e["cached_tokens"] for e in events)
    written = sum(e["cache_write_tokens"] for e in events)
    saved = read * (p["input_mtok"] - p["cache_read_mtok"]) / 1_000_000
    premium = written * (p["cache_write_mtok"] - p["input_mtok"]) / 1_000_000

    role = create_analyst(dsn, org_a.id, analyst_roles)
    with analyst_conn(role) as conn:
        rows = conn.execute((SQL_DIR / "cache_savings.sql").read_text()).fetchall()
    day = {r["canonical_model"]: r for r in rows}
    assert set(day) == {model}, rows
    got = day[model]
    assert (got["cache_read_tokens"], got["cache_write_tokens"]) == (read, written)
    assert got["read_savings_usd"] == _round6(saved)
    assert got["write_premium_usd"] == _round6(premium)
    assert got["net_savings_usd"] == _round6(saved - premium)
