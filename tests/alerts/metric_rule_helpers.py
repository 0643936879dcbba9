"""Helpers of the metric-rule tests: a rule of a new organization, evaluating at a moment, its events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta


def org_with_rule(db, rule_type: str, condition: dict) -> tuple[str, str]:
    org = str(uuid.uuid4())
    db.execute("insert into public.organizations (id, name) values (%s, 'metrics')", (org,))
    rule = db.execute(
        "insert into public.alert_rules (org_id, name, type, condition) values (%s, %s, %s, %s) returning id",
        (org, rule_type, rule_type, json.dumps(condition)),
    ).fetchone()["id"]
    return org, str(rule)


def evaluate(db, at: datetime) -> dict:
    return db.execute("select private.evaluate_alert_rules(%s) as r", (at,)).fetchone()["r"]


def rule_events(db, rule: str) -> list[dict]:
    return db.execute(
        "select status, severity, title, details from public.alert_events where rule_id = %s "
        "order by created_at",
        (rule,),
    ).fetchall()


def an_hour_ago_plus(seconds: int) -> datetime:
    """A moment `seconds` past the start of the last whole UTC hour: fixed within the hour, always past."""
    last_whole_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return last_whole_hour + timedelta(seconds=seconds)
