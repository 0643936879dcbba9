"""What every detector shares: the recommendation record, priority from savings, and pricing calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_MONTHLY_SAVINGS", "Rec", "priority", "reprice"]

# Below this a recommendation is noise, whatever the category.
MIN_MONTHLY_SAVINGS = 1.0


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


def reprice(
    conn, provider: str, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> float | None:
    """What these tokens cost at `model`'s price today (the pricing tables); None when it has no price."""
    # private.usage_cost at now(), through a PL/pgSQL wrapper that keeps its plan (20261123000500).
    row = conn.execute(
        "select private.cost_at_current_price(%s, %s, %s, %s, %s)::float8 as cost",
        (provider, model, int(input_tokens), int(output_tokens), int(cached_tokens)),
    ).fetchone()
    return None if row is None or row["cost"] is None else float(row["cost"])
