"""Two weeks of usage with random shapes (models, features, teams, costs, hours), an anomaly in the week
reported, recommendations applied (one measured) and open, and a daily budget already passed today;
scripted LLM answers for the report writer."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import Message

from tokentra_core.db import connect
from tokentra_dev.testing.llm_servers import Answer, SeenRequest
from tokentra_worker.reports import report_week

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-haiku-4-5", "claude-sonnet-4-5", "gpt-4.1"]
FEATURES = ["chat", "search", "summarize", "classify", None]
TEAMS = ["growth", "platform", "support", None]


@dataclass
class Week:
    org_id: str
    start: date
    this_week: Decimal  # the org's cost in the week reported, summed from the rows inserted
    previous_week: Decimal


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def seed_week(dsn: str, org_id: str, seed: int) -> Week:
    rng = random.Random(seed)
    start = report_week(datetime.now(UTC))
    ws = datetime(start.year, start.month, start.day, tzinfo=UTC)
    rows, totals = [], {True: Decimal(0), False: Decimal(0)}
    for this_week in (False, True):
        for _ in range(rng.randint(8, 40)):
            at = ws + timedelta(days=rng.randrange(7) - (0 if this_week else 7), hours=rng.randrange(24),
                                minutes=rng.randrange(60))
            cost = Decimal(rng.randint(1, 400_000)) / 10_000 * (3 if this_week and rng.random() < 0.3 else 1)
            totals[this_week] += cost
            rows.append((org_id, at, str(uuid.uuid4()), "openai", rng.choice(MODELS), rng.choice(FEATURES),
                         rng.choice(TEAMS), cost))
    with connect(dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into public.usage_records (org_id, occurred_at, request_id, provider, model, feature, team,"
                " cost_usd, priced) values (%s, %s, %s, %s, %s, %s, %s, %s, true)", rows)
        conn.execute("insert into public.anomalies (org_id, metric, dimension, dimension_value, severity,"
                     " window_start, money_involved) values (%s, 'cost', 'feature', 'chat', 'high', %s, %s)",
                     (org_id, ws + timedelta(days=2, hours=13), Decimal(rng.randint(100, 9_999)) / 100))
        conn.execute(
            "insert into public.recommendations (org_id, category, fingerprint, title, estimated_monthly_savings,"
            " status, applied_at, realised_monthly_savings) values"
            " (%(o)s, 'task_aware_routing', 'w1', 'Route classify to gpt-4o-mini', %(e1)s, 'applied', %(a1)s, %(r1)s),"
            " (%(o)s, 'semantic_caching', 'w2', 'Cache repeated search prompts', %(e2)s, 'open', null, null)",
            {"o": org_id, "e1": Decimal(rng.randint(1_000, 90_000)) / 100, "a1": ws + timedelta(days=3),
             "r1": Decimal(rng.randint(1_000, 90_000)) / 100, "e2": Decimal(rng.randint(1_000, 90_000)) / 100})
        conn.execute("insert into public.budgets (org_id, name, amount, period) values (%s, 'daily cap', 5, 'daily')",
                     (org_id,))
        conn.execute("insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd,"
                     " priced) values (%s, now(), %s, 'openai', 'gpt-4o', 7.5, true)", (org_id, str(uuid.uuid4())))
    return Week(org_id, start, totals[True], totals[False])


def evidence_of(seen: SeenRequest) -> dict:
    """The evidence the writer sent (the JSON after 'Evidence:')."""
    return json.JSONDecoder().raw_decode(seen.prompt.split("Evidence:\n", 1)[1])[0]


def grounded(seen: SeenRequest) -> Answer:
    """A report citing only evidence figures, some reformatted ($, thousands separators, rounding)."""
    ev = evidence_of(seen)
    s, top = ev["spend"], ev["top_drivers"]["model"][0]
    r, b = ev["recommendations"], ev["budgets_at_risk"][0]
    return Answer.json({
        "headline": f"AI spend reached ${s['this_week_usd']:,.2f} in the week of {ev['period']['start'][:10]}, "
                    f"against ${s['previous_week_usd']:,.2f} the week before.",
        "body": f"Model {top['value']} moved most (${abs(top['change_usd']):,.2f}). "
                f"{ev['anomalies']['count']} anomaly started this week, involving "
                f"${ev['anomalies']['money_involved_usd']:,.2f}.\n\nBudget {b['name']} is at {b['spent_pct']}% of "
                f"${b['amount_usd']:,.2f}. Applied recommendations save ${r['realised_monthly_savings_usd']:,.2f} "
                f"a month as measured."})


def inventing(seen: SeenRequest) -> Answer:
    """A report with one figure the evidence lacks."""
    ev = evidence_of(seen)
    return Answer.json({"headline": f"AI spend reached ${ev['spend']['this_week_usd']:,.2f} this week.",
                        "body": "Next month will cost $999.99 at this rate."})
