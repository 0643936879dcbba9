"""The wire models of the alert functions: rule conditions per type, rules, events and deliveries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from tokentra_core.alerting.channels import Channel
from tokentra_functions._inputs import JsonObject, Text

RuleType = Literal["budget_threshold", "spend_spike", "error_rate", "latency", "anomaly", "forecast_overrun",
                   "reconciliation_drift"]
Tag = Annotated[Text, Field(min_length=1, max_length=200)]
# Conditions are stored and answered with their numbers as JSON numbers, as every amount in the API.
AsNumber = PlainSerializer(float, return_type=float, when_used="json")
Window = Annotated[
    int,
    Field(
        ge=1,
        le=1440,
        description="Minutes before each evaluation, measured to the minute (from the start of the minute "
        "the window begins in); the part of a window older than three hours reads hourly rollups in proportion.",
    ),
]


# ---------------------------------------------------------------- conditions, per rule type
class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetThresholdCondition(_Condition):
    budget_ids: list[UUID] | None = Field(default=None, description="Only these budgets (default: all).")
    min_threshold: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="Ignore lower thresholds."
    )


class _Metric(_Condition):
    window_minutes: Window = 60
    severity: Literal["info", "warning", "critical"] = "warning"
    provider: Tag | None = None
    model: Tag | None = None
    team: Tag | None = None
    project: Tag | None = None
    feature: Tag | None = None


class SpendSpikeCondition(_Metric):
    factor: Annotated[Decimal, Field(gt=1, le=1000), AsNumber] = Decimal(3)
    min_spend_usd: Annotated[Decimal, Field(ge=0), AsNumber] = Decimal(1)
    baseline_hours: Annotated[int, Field(ge=1, le=720)] = 24


class ErrorRateCondition(_Metric):
    window_minutes: Window = 15
    threshold_pct: Annotated[Decimal, Field(gt=0, le=100), AsNumber] = Decimal(10)
    min_requests: Annotated[int, Field(ge=1)] = 20


class LatencyCondition(_Metric):
    window_minutes: Window = 15
    percentile: Annotated[Decimal, Field(gt=0, le=100), AsNumber] = Decimal(95)
    threshold_ms: Annotated[int, Field(ge=1)] = 5000
    min_requests: Annotated[int, Field(ge=1)] = 20


ReconciliationCause = Literal["untracked_traffic", "unpriced_model", "price_change", "cache_accounting",
                              "batch_flex_discount", "long_context", "tool_fees", "rounding", "timing", "unexplained"]


class ReconciliationDriftCondition(_Condition):
    """Billed against tracked over the last window_days reconciled UTC days."""

    threshold_pct: Annotated[Decimal, Field(gt=0, le=1000), AsNumber] = Decimal(5)
    min_gap_usd: Annotated[Decimal, Field(ge=0), AsNumber] = Decimal(1)
    window_days: Annotated[int, Field(ge=1, le=400)] = 7
    provider: Literal["openai", "anthropic"] | None = None
    canonical_model: Tag | None = None
    causes: Annotated[list[ReconciliationCause], Field(min_length=1, max_length=10)] | None = Field(
        default=None, description="Only these causes' share of the gap (default: the whole gap)."
    )
    severity: Literal["info", "warning", "critical"] = "warning"


CONDITIONS: dict[str, type[_Condition] | None] = {
    "budget_threshold": BudgetThresholdCondition,
    "spend_spike": SpendSpikeCondition,
    "error_rate": ErrorRateCondition,
    "latency": LatencyCondition,
    # Evaluated by the anomaly and forecast jobs of the next issues; their conditions are theirs to define.
    "anomaly": None,
    "forecast_overrun": None,
    "reconciliation_drift": ReconciliationDriftCondition,
}


# ---------------------------------------------------------------- wire models
class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    condition: JsonObject | None = None
    channels: Annotated[list[Channel], Field(max_length=20)] | None = None
    enabled: bool | None = None


class RuleIn(RulePatch):
    org_id: UUID
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    type: RuleType
    condition: JsonObject = Field(default_factory=dict)
    channels: Annotated[list[Channel], Field(max_length=20)] = Field(default_factory=list)
    enabled: bool = True


class Rule(BaseModel):
    id: UUID
    org_id: UUID
    name: str
    type: RuleType
    condition: dict[str, Any]
    channels: list[dict[str, Any]] = Field(
        description="Credentials are replaced by hints (url_hint, has_secret)."
    )
    enabled: bool
    created_at: datetime
    updated_at: datetime


class Delivery(BaseModel):
    id: UUID
    channel_id: UUID
    channel_type: str
    kind: Literal["trigger", "resolve"]
    status: Literal["pending", "sending", "delivered", "failed"]
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Event(BaseModel):
    id: UUID
    org_id: UUID
    rule_id: UUID | None
    budget_id: UUID | None
    severity: str
    title: str
    details: dict[str, Any]
    status: Literal["open", "acknowledged", "resolved"]
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    created_at: datetime
    deliveries: list[Delivery] = []
