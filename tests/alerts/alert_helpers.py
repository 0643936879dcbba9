"""Helpers of the alert tests: rules through the API, budgets and spend through SQL, delivery runs."""

from __future__ import annotations

import base64
import os
import uuid
from decimal import Decimal

import httpx

from org_fixtures import Org, add_usage
from tokentra_core.db import connect
from tokentra_core.settings import Settings
from tokentra_worker.alerting.delivery import DeliveryStats, deliver_due


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def create_rule(url: str, org: Org, channels: list[dict], role: str = "admin", **fields) -> httpx.Response:
    body = {
        "org_id": org.id,
        "name": "budget alerts",
        "type": "budget_threshold",
        "channels": channels,
        **fields,
    }
    return httpx.post(f"{url}/alerts", json=body, headers=org.auth(role), timeout=30)


def budget_crossing(
    dsn: str, org: Org, spent: str, amount: str = "10.00", thresholds=(50, 75, 90, 100)
) -> str:
    """A daily budget of `amount` with `spent` of usage today: thresholds up to spent/amount are crossed."""
    with connect(dsn, autocommit=True) as conn:
        b = conn.execute(
            "insert into public.budgets (org_id, name, amount, period, alert_thresholds) "
            "values (%s, 'daily cap', %s, 'daily', %s) returning id",
            (org.id, Decimal(amount), list(thresholds)),
        ).fetchone()["id"]
    add_usage(dsn, org.id, spent)
    return str(b)


def evaluate(dsn: str) -> dict:
    with connect(dsn, autocommit=True) as conn:
        return conn.execute("select private.evaluate_budgets() as r").fetchone()["r"]


def deliver(dsn: str, settings: Settings, org: Org, budget: float = 10.0) -> DeliveryStats:
    """Deliver the organization's due alerts (other tests' deliveries are left alone)."""
    return deliver_due(dsn, settings, f"test-{uuid.uuid4().hex[:6]}", time_budget=budget, org_id=org.id)


def deliveries(dsn: str, org: Org) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select * from private.alert_deliveries where org_id = %s order by created_at, kind", (org.id,)
        ).fetchall()


def events(dsn: str, org: Org) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select * from public.alert_events where org_id = %s order by created_at", (org.id,)
        ).fetchall()
