"""A cost spike with known figures (the pgTAP scenario of anomaly_evidence), a recommendation, and
scripted answers that cite the evidence they were sent, or not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tokentra_core.db import connect
from tokentra_dev.testing.llm_scripts import evidence_of, grounded
from tokentra_dev.testing.llm_servers import Answer, SeenRequest

__all__ = ["Spike", "evidence_of", "grounded", "inventing", "seed_spike"]


@dataclass
class Spike:
    org_id: str
    anomaly_id: str
    recommendation_id: str
    window_start: datetime


_USAGE = """
insert into public.usage_records (org_id, occurred_at, request_id, provider, model, input_tokens, output_tokens,
                                  cost_usd, priced, feature, team)
select %(org)s, %(ws)s - d * interval '1 day' + (i %% 120) * interval '1 minute', gen_random_uuid()::text, 'openai',
       m.model, 1000, 100, m.cost, true, m.feature, m.team
from generate_series(%(first)s::int, %(last)s::int) d,
     (values ('gpt-4o-mini', 0.01::numeric, 'chat', 'search', %(mini)s::int),
             ('gpt-4o', %(cost4o)s::numeric, 'summarize', 'docs', %(big)s::int))
       m(model, cost, feature, team, n),
     generate_series(1, m.n::int) i
"""


def seed_spike(dsn: str, org_id: str) -> Spike:
    """Seven baseline days (10 gpt-4o-mini calls at $0.01, 2 gpt-4o at $0.05 in the same three hours) and
    a window of 20 and 10 calls, gpt-4o now at $0.08: cost $0.20 -> $1.00. An open anomaly on it, and an
    open recommendation."""
    ws = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    with connect(dsn, autocommit=True) as conn:
        conn.execute(_USAGE, {"org": org_id, "ws": ws, "first": 1, "last": 7, "mini": 10, "big": 2, "cost4o": 0.05})
        conn.execute(_USAGE, {"org": org_id, "ws": ws, "first": 0, "last": 0, "mini": 20, "big": 10, "cost4o": 0.08})
        anomaly = conn.execute(
            "insert into public.anomalies (org_id, metric, dimension, severity, window_start, window_end, grain,"
            " expected_value, actual_value, money_involved, score) values (%s, 'cost', 'organization', 'high', %s,"
            " %s, 'hour', 0.0667, 0.3333, 0.8, 9.4) returning id", (org_id, ws, ws + timedelta(hours=3))).fetchone()
        rec = conn.execute(
            "insert into public.recommendations (org_id, category, scope_type, scope_value, fingerprint, title,"
            " current_monthly_cost, projected_monthly_cost, estimated_monthly_savings, savings_method, confidence,"
            " priority, evidence) values (%s, 'task_aware_routing', 'feature', 'summarize', 'fp-explain',"
            " 'Route classification calls of feature summarize from gpt-4o to gpt-4o-mini', 1250.5, 310.25,"
            " 940.25, 'the same tokens repriced at the target model''s listed price', 0.8, 'high',"
            " '{\"requests\": 120000, \"cost_per_request\": 0.0104208, \"window_days\": 30, \"model\": \"gpt-4o\","
            " \"series\": {\"2026-11-01\": 40.1}}') returning id", (org_id,)).fetchone()
    return Spike(org_id, str(anomaly["id"]), str(rec["id"]), ws)


def inventing(seen: SeenRequest) -> Answer:
    """An answer with one figure the evidence does not have."""
    return Answer.json({"headline": "Spend jumped by $999.99 this afternoon.",
                        "body": "Most of it came from longer prompts."})
