"""Hourly usage history for the intelligence tests, one usage row per (hour, series), bulk-copied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from tokentra_core.db import connect


def hour_now() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def seasonal_costs(hours: int, level: float = 2.0, seed: int = 0) -> np.ndarray:
    """Hourly spend with a daily and weekly shape and mild noise, oldest first."""
    rng = np.random.default_rng(seed)
    h = np.arange(hours)
    daily = 1 + 0.5 * np.sin(2 * np.pi * (h % 24 - 8) / 24)
    return level * daily * rng.lognormal(0, 0.08, hours)


def load_hours(dsn: str, org_id: str, costs, end: datetime, **cols) -> None:
    """One row per hour ending at `end` (exclusive) with the given cost; other columns as given."""
    n = len(costs)
    start = end - timedelta(hours=n)
    row = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 200,
        "priced": True,
        "latency_ms": 500,
        "status": "success",
        **cols,
    }
    names = ["org_id", "occurred_at", "request_id", "cost_usd", *row]
    with connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(f"copy public.usage_records ({', '.join(names)}) from stdin") as copy:
            for i, c in enumerate(costs):
                copy.write_row(
                    [
                        org_id,
                        start + timedelta(hours=i, minutes=30),
                        str(uuid.uuid4()),
                        float(c),
                        *row.values(),
                    ]
                )
