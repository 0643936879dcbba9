"""Recommendations as the detectors write them, scripted panel answers, and readers of what was stored."""

from __future__ import annotations

from decimal import Decimal

from psycopg.types.json import Jsonb

from tokentra_core.db import connect
from tokentra_dev.bench_consensus import role_of, round_of
from tokentra_dev.testing.llm_servers import SeenRequest

__all__ = ["add_recommendation", "position", "rec_row", "role_of", "round_of", "runs", "set_cap", "synthesis"]


def add_recommendation(dsn: str, org_id: str, savings: float = 1500, current: float = 3000,
                       confidence: float = 0.8, feature: str = "classify") -> str:
    """An open task-aware routing recommendation over $1,000 a month (the high-savings trigger)."""
    with connect(dsn, autocommit=True) as conn:
        return str(conn.execute(
            "insert into public.recommendations (org_id, category, scope_type, scope_value, fingerprint, title,"
            " description, current_monthly_cost, projected_monthly_cost, estimated_monthly_savings, savings_method,"
            " confidence, priority, risk, effort, evidence, suggested_rule) values (%s, 'task_aware_routing',"
            " 'feature', %s, %s, %s, 'Classification calls ran on gpt-4o.', %s, %s, %s, 'repriced tokens', %s,"
            " 'critical', 'medium', 'low', %s, %s) returning id",
            (org_id, feature, f"task_aware_routing:feature={feature}:classification:gpt-4o",
             f"Route classification calls of feature {feature} from gpt-4o to gpt-4o-mini", current,
             current - savings, savings, confidence,
             Jsonb({"requests": 80_000, "model": "gpt-4o", "target_model": "gpt-4o-mini",
                    "sample_request_ids": ["secret-looking-id-1"], "prompt_hash": "abc"}),
             Jsonb({"conditions": {"feature": feature}, "action": {"type": "route_to_model",
                                                                    "model": "gpt-4o-mini"}})),
        ).fetchone()["id"])


def position(verdict: str = "accept", savings: float = 1400, confidence: float = 0.8,
             topics: tuple[tuple[str, str], ...] = (("savings_estimate", "supports"),)) -> dict:
    return {"verdict": verdict, "adjusted_monthly_savings": savings, "confidence": confidence,
            "key_points": [{"topic": t, "stance": s, "text": f"{t} {s}"} for t, s in topics],
            "risks": ["quality on hard requests"]}


def synthesis(verdict: str = "accept", source: str = "skeptic", confidence: float = 0.75,
              dissent: list[dict] | None = None) -> dict:
    return {"verdict": verdict, "description": "Route the classification calls to the small model.",
            "confidence": confidence, "savings_source": source, "caveats": ["compare quality on a sample first"],
            "dissent": dissent or []}


def rec_row(dsn: str, rec_id: str) -> dict:
    with connect(dsn) as conn:
        return conn.execute("select status, confidence, detector_confidence, caveats, consensus_run_id"
                            " from public.recommendations where id = %s", (rec_id,)).fetchone()


def runs(dsn: str, rec_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("select * from public.consensus_runs where recommendation_id = %s order by started_at",
                            (rec_id,)).fetchall()


def calls(dsn: str, run_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("select * from public.consensus_calls where run_id = %s order by seq",
                            (run_id,)).fetchall()


def set_cap(dsn: str, org_id: str, cap: Decimal | str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update public.billing_profiles set ai_monthly_cap_usd = %s where org_id = %s", (cap, org_id))


def agents(seen: list[SeenRequest]) -> list[SeenRequest]:
    return [s for s in seen if role_of(s) != "synthesizer"]
