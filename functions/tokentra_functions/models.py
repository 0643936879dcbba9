"""The wire models of the functions: what clients send and what they get back."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator, model_validator
from pydantic_core import to_json

Count = Annotated[int, Field(ge=0, le=10**10)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
Hash = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{16,128}$")]
# Fields lifted from metadata into their own columns; the rest of metadata is kept as given.
ATTRIBUTION = {"feature": "feature", "user_id": "end_user_id", "team": "team", "project": "project"}
# Client-side signals of an event, kept in metadata under SIGNALS_KEY (see IngestEvent).
SIGNALS_KEY = "tokentra"
SIGNALS = ("response_format", "output_overhead", "prefix_hash", "prefix_share", "routing_rule_id", "routing_arm",
           "routed_from_provider", "cache_entry_id", "cache_saved_usd")
UUID_TEXT = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class IngestEvent(BaseModel):
    """One LLM call. Token convention (OpenAI's and genai-prices'): input_tokens counts every input
    token, cache reads and writes included; output_tokens counts every output token, reasoning included."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    request_id: Short
    provider: Annotated[str, Field(min_length=1, max_length=64)]
    model: Short
    endpoint: Annotated[str, Field(max_length=100)] | None = None
    input_tokens: Count = 0
    output_tokens: Count = 0
    cached_tokens: Count = 0
    cache_write_tokens: Count = 0
    reasoning_tokens: Count = 0
    service_tier: Annotated[str, Field(max_length=50)] | None = None
    latency_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None
    time_to_first_token_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None
    status: Literal["success", "error", "timeout", "rate_limited", "cancelled"] = "success"
    error_code: Annotated[str, Field(max_length=100)] | None = None
    retry_count: Annotated[int, Field(ge=0, le=1000)] = 0
    is_streaming: bool = False
    is_timeout: bool = False
    is_rate_limited: bool = False
    routed_from_model: Annotated[str, Field(max_length=200)] | None = None
    cache_hit: bool = False
    prompt_hash: Hash | None = None
    system_prompt_hash: Hash | None = None
    task_type: Annotated[str, Field(max_length=64)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime
    cost_usd: Annotated[Decimal, Field(ge=0, le=10**9)] | None = Field(
        default=None, description="The cost the client was billed, kept beside ours."
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    raw_usage: dict[str, Any] | None = Field(default=None, description="The provider's usage object.")
    source: Literal["sdk", "otel", "api", "gateway"] = "sdk"
    reservation_id: UUID | None = Field(
        default=None, description="The strict budget reservation the call was made under (/budget/reserve)."
    )
    # Signals the SDK measures on the client, never content; stored under metadata["tokentra"].
    response_format: Literal["text", "json_object", "json_schema"] | None = Field(
        default=None, description="The output format the call asked for."
    )
    output_overhead: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="Share of the answer's characters outside the compact JSON it contains (whitespace, "
        "code fences, prose around it); absent when the answer holds no JSON.",
    )
    prefix_hash: Hash | None = Field(
        default=None,
        description="Hash of everything before the last user message (system prompt included), when "
        "other messages precede it: the part a provider's prompt cache could serve.",
    )
    prefix_share: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="Share of the prompt's characters inside that prefix."
    )
    # The routing decision the call was made under (tokentra.routing); usage_records derives its
    # routing_rule_id and routing_arm columns from these, and realised savings are measured on them.
    routing_rule_id: Annotated[str, Field(pattern=UUID_TEXT)] | None = Field(
        default=None, description="The routing rule that decided the call."
    )
    routing_arm: Literal["treatment", "control", "rule", "strategy"] | None = Field(
        default=None, description="Experiment arm of the rule, `rule` (all traffic) or `strategy` (registry)."
    )
    # Columns of their own (usage_records.trace_id, session_id), for cost per trace or session; staged as
    # such by ingest_schema (an SDK tag of the same name in metadata fills them too).
    trace_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="The trace the call belongs to (an OpenTelemetry trace id, or any id you give one request "
        "through your agent or chain); GET /costs/traces sums cost per trace.",
    )
    session_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="The session (conversation, job) the call belongs to; GET /costs/traces?group_by=session.",
    )
    routed_from_provider: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Provider of routed_from_model, the model the caller asked for."
    )
    # A call answered from TokenTRA's semantic cache (cache_hit true): the entry and the cost of the call
    # it replaced, so the savings are measured from usage rows.
    cache_entry_id: Annotated[str, Field(pattern=UUID_TEXT)] | None = Field(
        default=None, description="The semantic cache entry that answered the call."
    )
    cache_saved_usd: Annotated[float, Field(ge=0, le=1_000_000)] | None = Field(
        default=None, description="What the call the cache answered would have cost (the entry's cost)."
    )

    @field_validator("provider")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(to_json(v, fallback=str)) > 16_384:
            raise ValueError("metadata is larger than 16 KiB")
        if SIGNALS_KEY in v:
            raise ValueError(f"metadata key {SIGNALS_KEY!r} is reserved for the SDK's signals")
        return v

    @model_validator(mode="after")
    def _parts_within_totals(self) -> IngestEvent:
        if self.cached_tokens + self.cache_write_tokens > self.input_tokens:
            raise ValueError(
                "cached_tokens + cache_write_tokens exceed input_tokens (input counts cache reads and writes)"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning_tokens exceed output_tokens (output counts reasoning)")
        if (self.prefix_hash is None) != (self.prefix_share is None):
            raise ValueError("prefix_hash and prefix_share come together")
        return self

    def check_time(self, window: TimeWindow) -> str | None:
        """Why the timestamp cannot be stored, or None."""
        if self.timestamp > window.latest:
            return "timestamp is more than 5 minutes in the future"
        if self.timestamp < window.earliest:
            return f"timestamp is older than the {window.retention_days}-day retention period"
        return None

    def row(self, idx: int) -> dict[str, Any]:
        """The usage_records columns for this event, as ingest_events expects them."""
        meta = dict(self.metadata)
        lifted = {col: _text(meta.pop(key, None)) for key, col in ATTRIBUTION.items()}
        body = self.model_dump(mode="json", exclude={"metadata", "timestamp", "cost_usd", "reservation_id",
                                                     *SIGNALS})
        body.update(lifted)
        # Signals ride in metadata (no column, no change to the insert); only when sent, so the content
        # hash of events without them is what it always was.
        signals = {k: getattr(self, k) for k in SIGNALS if getattr(self, k) is not None}
        if signals:
            meta[SIGNALS_KEY] = signals
        body["metadata"] = dict(sorted(meta.items()))  # key order must not change the content hash
        body["client_cost_usd"] = str(self.cost_usd) if self.cost_usd is not None else None
        body["is_timeout"] = self.is_timeout or self.status == "timeout"
        body["is_rate_limited"] = self.is_rate_limited or self.status == "rate_limited"
        # The content hash leaves out the timestamp: a retry stamped later is still the same event.
        body["content_hash"] = hashlib.sha256(to_json(body, fallback=str)).hexdigest()
        body["occurred_at"] = self.timestamp.isoformat()
        # Outside the content hash: which reservation a call was made under does not change the call.
        body["reservation_id"] = str(self.reservation_id) if self.reservation_id else None
        body["idx"] = idx
        return body


class TimeWindow:
    """The timestamps an event may carry: up to 5 minutes ahead, back to the retention period."""

    def __init__(self, now: datetime, retention_days: int) -> None:
        self.latest = now + timedelta(minutes=5)
        self.earliest = now - timedelta(days=retention_days)
        self.retention_days = retention_days


def _text(v: Any) -> str | None:
    return None if v is None else str(v)[:200]


class IngestBatch(BaseModel):
    events: list[Any] = Field(max_length=1000)


class Rejection(BaseModel):
    index: int
    field: str
    message: str


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    unpriced: int = Field(description="Accepted events whose model has no known price yet.")
    rejected: list[Rejection]


# Money in answers: a JSON number, as /costs writes it (pydantic would write a Decimal as a string).
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every refusal: a code and a sentence; a 422 also names the fields, all of them under `errors`."""

    error: str
    message: str
    field: str | None = None
    reason: str | None = None
    errors: list[FieldError] | None = None
