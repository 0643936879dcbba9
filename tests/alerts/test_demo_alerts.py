"""The end of `tokentra demo`: budgets crossing thresholds and the alerts delivered to its local receiver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from rich.console import Console

from tokentra_core.db import connect
from tokentra_dev import demo_budgets


def test_demo_shows_budgets_crossing_thresholds_and_delivered_alerts(functions_url, tenant, dsn, monkeypatch):
    with connect(dsn, autocommit=True) as conn:
        for i in range(30):  # this month's traffic of two teams and features
            conn.execute(
                "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, "
                "feature, cost_usd, priced) values (%s, %s, %s, 'openai', 'gpt-4o', %s, %s, %s, true)",
                (
                    tenant.org_id,
                    datetime.now(UTC) - timedelta(minutes=i),
                    str(uuid.uuid4()),
                    "search" if i % 3 else "support",
                    "chat" if i % 2 else "summarize",
                    Decimal("0.25"),
                ),
            )
    console = Console(record=True, width=160)
    monkeypatch.setattr(demo_budgets, "console", console)
    demo_budgets.show(UUID(tenant.org_id), functions_url, tenant.key)
    text = console.export_text()
    assert "Budgets" in text and "exceeded" in text and "warning" in text
    assert "Alerts delivered to the local receiver" in text
    assert text.count("signature ok") >= 5 and "bad signature" not in text
    assert "0 failed" in text and "refused" in text
    with connect(dsn, autocommit=True) as conn:  # its receiver is gone: leave nothing to send to it
        conn.execute("delete from public.alert_rules where org_id = %s", (tenant.org_id,))
