"""The structured answers of the consensus agents, as pydantic models (the providers' native schemas)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["ROLES", "Dissent", "KeyPoint", "Position", "Role", "Synthesis", "Verdict"]

Verdict = Literal["accept", "modify", "reject"]
Role = Literal["analyst", "skeptic", "advocate"]
ROLES: tuple[Role, ...] = ("analyst", "skeptic", "advocate")
# Key points are tagged with a topic from a fixed list, so overlap between agents is measured on structure,
# not on wording (see score.py).
Topic = Literal[
    "savings_estimate",
    "data_coverage",
    "quality_risk",
    "latency",
    "reliability",
    "implementation_effort",
    "user_experience",
    "seasonality",
    "vendor_risk",
    "other",
]
Stance = Literal["supports", "challenges"]


def _short(limit: int):
    # Trimmed rather than refused: an over-long sentence is not worth a repair round trip.
    return AfterValidator(lambda s: s.strip()[:limit])


Text = Annotated[str, _short(500)]


class KeyPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: Topic
    stance: Stance = Field(description="Whether this point supports or challenges the recommendation as stated.")
    text: Text


class Position(BaseModel):
    """One agent's position in one round."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict = Field(description="accept as stated, modify (right idea, other figure or steps), reject.")
    adjusted_monthly_savings: float = Field(
        ge=0, description="USD a month you believe it saves, derived only from the evidence's figures."
    )
    confidence: float = Field(ge=0, le=1)
    key_points: list[KeyPoint] = Field(max_length=8)
    risks: list[Text] = Field(max_length=8)


class Dissent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    summary: Text


class Synthesis(BaseModel):
    """The synthesizer's final word. It names whose savings estimate it adopts instead of writing a figure."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    description: Annotated[str, _short(2000)]
    confidence: float = Field(ge=0, le=1)
    savings_source: Role = Field(description="The agent whose last-round adjusted_monthly_savings is adopted.")
    caveats: list[Text] = Field(max_length=8)
    dissent: list[Dissent] = Field(max_length=3)
