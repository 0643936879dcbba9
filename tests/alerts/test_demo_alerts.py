"""The end of `tokentra demo`: budgets crossing thresholds and the alerts delivered to its local receiver."""

from __future__ import annotations

import uuid
from decimal import Decimal
from uuid import UUID

from rich.console import Console

from tokentra_core.db import connect
from tokentra_dev import demo_budgets


def test_demo_shows_budgets_crossing_thresholds_and_delivered_alerts(functions_url, tenant, dsn, monkeypatch):
    with connect(dsn, autocommit=True) as conn:
        # This month's traffic of two teams and features, spread over the month so far: rows stamped minutes
        # back fell in the month before when the test ran in the first minutes of a month.
        month = conn.execute(
            "select now() as now, p.period_start as start from public.organizations o cross join lateral "
            "private.budget_period('monthly', 1::smallint, o.timezone, now()) p where o.id = %s",
            (tenant.org_id,),
        ).fetchone()
        for i in range(30):
            conn.execute(
                "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, team, "
                "feature, cost_usd, priced) values (%s, %s, %s, 'openai', 'gpt-4o', %s, %s, %s, true)",
                (
                    tenant.org_id,
                    month["now"] - (month["now"] - month["start"]) * i / 30,
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
