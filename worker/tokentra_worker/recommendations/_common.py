"""The recommendation record the job writes (built from a detector's private.recommendation_candidate row)
and its priority from savings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Rec", "priority"]


# Keyword-only: sixteen fields by position invite a swapped pair that no type checker would notice.
@dataclass(kw_only=True)
class Rec:
    category: str
    scope_type: str
    scope_value: str
    key: str  # what makes the pattern unique inside its category and scope (e.g. the model)
    title: str
    description: str
    current: float
    projected: float
    method: str
    confidence: float
    risk: str
    effort: str
    steps: list[str]
    evidence: dict[str, Any]
    suggested_rule: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def savings(self) -> float:
        return max(self.current - self.projected, 0.0)

    @property
    def fingerprint(self) -> str:
        return f"{self.category}:{self.scope_type}={self.scope_value}:{self.key}"


def priority(savings: float) -> str:
    return (
        "critical" if savings >= 1000 else "high" if savings >= 200 else "medium" if savings >= 20 else "low"
    )
