"""Shapes and readers the LLM layer's tests share."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from tokentra_core.db import connect


class Position(BaseModel):
    """A consensus agent's position, the shape the consensus job asks for."""

    verdict: Literal["accept", "modify", "reject"]
    adjusted_savings_usd: float = Field(ge=0)
    confidence: float = Field(ge=0, le=1)
    key_points: list[str]


AGREE = {"verdict": "accept", "adjusted_savings_usd": 1200.0, "confidence": 0.9,
         "key_points": ["the premium model serves simple classification", "quality holds on the cheap model"]}
SYSTEM = "You are the skeptic of a cost review board. " * 10
PROMPT = "Recommendation: move feature classify from gpt-4o to gpt-4o-mini; saves $1,200 a month."


def usage_rows(dsn: str, org_id: str) -> list[dict]:
    """The internal organization's usage rows made on behalf of org_id, oldest first."""
    with connect(dsn) as conn:
        return conn.execute(
            "select request_id, provider, model, status, input_tokens, output_tokens, cached_tokens, cost_usd,"
            " feature, end_user_id, routed_from_model, prompt_hash, metadata from public.usage_records"
            " where org_id = private.internal_org_id() and end_user_id = %s order by occurred_at, id",
            (org_id,)).fetchall()


def set_cap(dsn: str, org_id: str, cap: Decimal | str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update public.billing_profiles set ai_monthly_cap_usd = %s where org_id = %s", (cap, org_id))
