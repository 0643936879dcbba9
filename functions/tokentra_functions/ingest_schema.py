"""The ingest event: its wire model, every rule it must pass, and the row it is staged as for
private.ingest_staged.

The one place to extend when the event grows a field:
- declare it on IngestEvent (type, constraints, description; the OpenAPI document follows);
- if it is a client signal kept in metadata.tokentra, add its name to SIGNALS;
- if it has a column of its own, add the column to usage_records and to private.ingest_staged's column
  lists (a migration), and the field to STAGED below with the type it travels as;
- a rule beyond the field's own type (several fields, the server's clock) goes in CHECKS below.
A field added later enters the content hash only when an event carries it, so events without it keep the
hash they always had and their retries stay duplicates (see _hashed).

Validation is one pydantic pass per part of the batch (no Python validators on the model: they would run
per event; parts, so that Postgres stores one part while the next is read), then one short loop per event
that lifts the attribution, serializes the event once with pydantic-core, hashes those bytes and looks in them for what
Postgres cannot store (NUL characters, NaN and Infinity, unpaired surrogates, deep nesting). Only an event
whose bytes show a sign of one is walked value by value, to name the field or clear it.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from tokentra_functions.batch_body import Unreadable
from tokentra_functions.models import Rejection, Short

__all__ = ["ATTRIBUTION", "CHECKS", "SIGNALS", "SIGNALS_KEY", "STAGED", "STAGED_COLUMNS", "Batch", "IngestBatch",
           "IngestEvent", "Problem", "Staging", "TimeWindow", "staging"]

# Serialized JSON of metadata and of raw_usage, each; how deep either may nest.
MAX_JSON_BYTES = 16_384
MAX_DEPTH = 16
Count = Annotated[int, Field(ge=0, le=10**10)]
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
    token, cache reads and writes included; output_tokens counts every output token, reasoning included.
    No text anywhere in it (metadata and raw_usage included) may hold a NUL character or an unpaired
    surrogate, numbers are finite, and metadata and raw_usage nest at most 16 levels."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    request_id: Short
    provider: Annotated[str, StringConstraints(min_length=1, max_length=64, to_lower=True)]
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
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Attribution (feature, team, project and user_id are lifted into columns of their own) and "
        f"anything else, at most {MAX_JSON_BYTES} bytes as JSON; the key 'tokentra' is reserved for the SDK's "
        "signals.",
    )
    timestamp: datetime = Field(description="When the call started; without an offset, UTC.")
    # usage_records.client_cost_usd is numeric(20, 12): under 10^8 fits.
    cost_usd: Annotated[Decimal, Field(ge=0, lt=10**8)] | None = Field(
        default=None, description="The cost the client was billed, kept beside ours."
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    raw_usage: dict[str, Any] | None = Field(
        default=None, description=f"The provider's usage object, at most {MAX_JSON_BYTES} bytes as JSON."
    )
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


# The fast path's event: the integer fields take JSON integers only (strict), so a boolean, a float or
# a numeric string sends the part to the lax path, which refuses booleans by name and reads the rest as
# it always has. Everything else is IngestEvent's own, so an event reads the same on either path.
StrictCount = Annotated[int, Field(ge=0, le=10**10, strict=True)]
StrictMillis = Annotated[int, Field(ge=0, le=86_400_000, strict=True)]


class _StrictEvent(IngestEvent):
    input_tokens: StrictCount = 0
    output_tokens: StrictCount = 0
    cached_tokens: StrictCount = 0
    cache_write_tokens: StrictCount = 0
    reasoning_tokens: StrictCount = 0
    latency_ms: StrictMillis | None = None
    time_to_first_token_ms: StrictMillis | None = None
    retry_count: Annotated[int, Field(ge=0, le=1000, strict=True)] = 0


class IngestBatch(BaseModel):
    """The body of POST /ingest, as the OpenAPI document shows it (events are validated one by one)."""

    events: list[IngestEvent] = Field(max_length=1000)


class TimeWindow:
    """The timestamps an event may carry: up to 5 minutes ahead, back to the retention period."""

    def __init__(self, now: datetime, retention_days: int) -> None:
        # Bounds in the standard library's UTC: an instant converted to it compares against them without
        # asking either zone for its offset (pydantic's zones answer through a call out of C each time).
        utc = now.astimezone(UTC)
        self.latest = utc + timedelta(minutes=5)
        self.earliest = utc - timedelta(days=retention_days)
        self.retention_days = retention_days

    def problem(self, utc: datetime) -> Problem | None:
        """Why a time in UTC is outside the window, or None."""
        if utc > self.latest:
            return Problem("timestamp", "timestamp is more than 5 minutes in the future")
        if utc < self.earliest:
            return Problem("timestamp", f"timestamp is older than the {self.retention_days}-day retention period")
        return None


def _utc(ts: datetime) -> datetime:
    """A timestamp in the standard library's UTC (no offset given: UTC), without overflow at the ends of
    the calendar."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # year 1 or 9999: far outside any window either way
        return datetime.min.replace(tzinfo=UTC) if ts.year == 1 else datetime.max.replace(tzinfo=UTC)
# Integer fields where JSON true/false must not pass as 1 and 0.
_INTEGERS = ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens",
             "latency_ms", "time_to_first_token_ms", "retry_count")


class Problem(NamedTuple):
    """Why an event cannot be stored: the field (a dotted path) and the reason."""

    field: str
    reason: str


# ---------------------------------------------------------------- rules beyond the fields' types


def _parts_within_totals(e: IngestEvent) -> Problem | None:
    if e.cached_tokens + e.cache_write_tokens > e.input_tokens:
        return Problem("cached_tokens", "cached_tokens + cache_write_tokens exceed input_tokens "
                                        "(input counts cache reads and writes)")
    if e.reasoning_tokens > e.output_tokens:
        return Problem("reasoning_tokens", "reasoning_tokens exceed output_tokens (output counts reasoning)")
    return None


def _prefix_pair(e: IngestEvent) -> Problem | None:
    if (e.prefix_hash is None) != (e.prefix_share is None):
        return Problem("prefix_hash", "prefix_hash and prefix_share come together")
    return None


def _reserved_metadata(e: IngestEvent) -> Problem | None:
    if SIGNALS_KEY in e.metadata:
        return Problem(f"metadata.{SIGNALS_KEY}", f"the metadata key {SIGNALS_KEY!r} is reserved for the SDK's signals")
    return None


CHECKS: tuple[Callable[[IngestEvent], Problem | None], ...] = (_parts_within_totals, _prefix_pair, _reserved_metadata)

# ---------------------------------------------------------------- staging
# The staged batch, in COPY order: (column, Postgres type). `idx` and `content_hash` are the batch's own;
# every other name is a usage_records column. JSON travels as text and is cast to jsonb in SQL.
STAGED: tuple[tuple[str, str], ...] = (
    ("idx", "integer"), ("request_id", "text"), ("source", "text"), ("provider", "text"), ("model", "text"),
    ("endpoint", "text"), ("input_tokens", "bigint"), ("output_tokens", "bigint"), ("cached_tokens", "bigint"),
    ("cache_write_tokens", "bigint"), ("reasoning_tokens", "bigint"), ("service_tier", "text"),
    ("client_cost_usd", "numeric"), ("currency", "text"), ("latency_ms", "integer"),
    ("time_to_first_token_ms", "integer"), ("status", "text"), ("error_code", "text"), ("retry_count", "integer"),
    ("is_timeout", "boolean"), ("is_rate_limited", "boolean"), ("is_streaming", "boolean"),
    ("routed_from_model", "text"), ("cache_hit", "boolean"), ("prompt_hash", "text"),
    ("system_prompt_hash", "text"), ("task_type", "text"), ("team", "text"), ("project", "text"),
    ("feature", "text"), ("end_user_id", "text"), ("metadata", "text"), ("raw_usage", "text"),
    ("occurred_at", "timestamptz"), ("content_hash", "bytea"), ("trace_id", "text"), ("session_id", "text"),
)
STAGED_COLUMNS = tuple(name for name, _ in STAGED)
_POSITION = {name: i for i, name in enumerate(STAGED_COLUMNS)}

# The content hash covers these fields, in this order, as it always has (then attribution, metadata and
# the client's cost); fields added later are appended only when an event carries them.
_HASHED = ("request_id", "provider", "model", "endpoint", "input_tokens", "output_tokens", "cached_tokens",
           "cache_write_tokens", "reasoning_tokens", "service_tier", "latency_ms", "time_to_first_token_ms",
           "status", "error_code", "retry_count", "is_streaming", "is_timeout", "is_rate_limited",
           "routed_from_model", "cache_hit", "prompt_hash", "system_prompt_hash", "task_type", "currency",
           "raw_usage", "source")
# Not what a call is: when it was stamped (a retry stamped later is the same event), the reservation it
# was made under; the signals are hashed inside metadata.
_UNHASHED = {"metadata", "timestamp", "cost_usd", "reservation_id", *SIGNALS}
_LATER = tuple(f for f in IngestEvent.model_fields if f not in _HASHED and f not in _UNHASHED)
_HASHED_OF = operator.itemgetter(*_HASHED)
_SIGNALS_OF = operator.itemgetter(*SIGNALS)
_EVENTS = TypeAdapter(list[IngestEvent])
_STRICT_EVENTS = TypeAdapter(list[_StrictEvent])
# What a request id and a timestamp read as in IngestEvent, for ordering and partitioning a batch before
# its events are validated (in parts, as they are staged).
_REQUEST_ID = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])
_REQUEST_IDS = TypeAdapter(list[Annotated[str, StringConstraints(strip_whitespace=True)]])
_TIMESTAMP = TypeAdapter(datetime)
_TIMESTAMPS = TypeAdapter(list[datetime])


@dataclass
class Batch:
    """A validated batch: the staged rows (STAGED order), the reservation each carries, and rejections."""

    rows: list[tuple] = field(default_factory=list)
    reservations: list[UUID | None] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    def column(self, name: str) -> Iterable[Any]:
        i = _POSITION[name]
        return (row[i] for row in self.rows)


class Staging:
    """A batch read from JSON whose events are validated, checked and staged in parts, so that the caller
    can hand the rows staged so far to Postgres while the rest are still being read: Postgres starts on
    the first part after about a tenth of the batch's Python work instead of all of it.

    Every event ends up in `batch`: staged as a row, or rejected with its index, field and reason."""

    def __init__(self, items: list[Any], now: datetime, retention_days: int) -> None:
        self.window = TimeWindow(now, retention_days)
        self.batch = Batch()
        # In the byte order of request ids (then by index), the order private.ingest_staged claims them
        # in: parts cut from this order lock shared claims in the same order in every batch, so
        # concurrent batches cannot deadlock, and a repeated id's first occurrence comes first. The ids
        # are read as the event model reads them (whitespace stripped), so the order is the stored ids'.
        ids = _read_all(_REQUEST_IDS, _REQUEST_ID, [_field(item, "request_id") for item in items])
        self.events: list[tuple[int, Any]] = sorted(enumerate(items), key=lambda pair: (ids[pair[0]] or "", pair[0]))
        self._timestamps = _read_all(_TIMESTAMPS, _TIMESTAMP, [_field(item, "timestamp") for item in items])

    def days(self) -> set[date]:
        """The days of the events inside the time window: those a stored event can fall on."""
        earliest, latest = self.window.earliest, self.window.latest
        return {utc.date() for utc in map(_utc, filter(None, self._timestamps)) if earliest <= utc <= latest}

    def stage(self, start: int, stop: int) -> list[tuple]:
        """Validate, check and stage events[start:stop] (in claim order); the rows staged of them."""
        batch, window = self.batch, self.window
        first = len(batch.rows)
        for idx, event in _typed(self.events[start:stop], batch.rejected):
            # The instant in the standard library's UTC (psycopg reads its offset in C); the binary COPY
            # never sends offset text, which Postgres refuses past 15:59.
            event.__dict__["timestamp"] = _utc(event.timestamp)
            staged = _problem(event, window) or _stage(event, idx)
            if isinstance(staged, Problem):
                batch.rejected.append(Rejection(index=idx, field=staged.field, message=staged.reason))
                continue
            batch.rows.append(staged)
            batch.reservations.append(event.reservation_id)
        return batch.rows[first:]


def _field(item: Any, name: str) -> Any:
    return item.get(name) if item.__class__ is dict else None


def _read_all(many: TypeAdapter[list[Any]], one: TypeAdapter[Any], values: list[Any]) -> list[Any]:
    """values read by the adapters (in one call when all can be), None for each that cannot."""
    try:
        return many.validate_python(values)
    except ValidationError:
        out = []
        for value in values:
            try:
                out.append(one.validate_python(value))
            except ValidationError:
                out.append(None)
        return out


def staging(items: list[Any], now: datetime, retention_days: int) -> Staging:
    """A Staging of a batch's items, as read from JSON (an item that could not be is a batch_body.Unreadable)."""
    return Staging(items, now, retention_days)


def _typed(items: list[tuple[int, Any]], rejected: list[Rejection]) -> list[tuple[int, IngestEvent]]:
    """(index, event) of the (index, item) pairs that are IngestEvents; the others are rejected with their
    first error. Well-formed items, the usual case, are read in one strict pass; otherwise the items are
    taken one rule at a time so that each bad one is named and costs only itself."""
    try:
        return list(zip((idx for idx, _ in items), _STRICT_EVENTS.validate_python([item for _, item in items]),
                        strict=True))
    except ValidationError:
        pass
    bad: set[int] = set()
    for position, (idx, item) in enumerate(items):
        problem = _unreadable_or_boolean(item)
        if problem is not None:
            bad.add(position)
            rejected.append(Rejection(index=idx, field=problem.field, message=problem.reason))
    positions = list(range(len(items)))
    while True:
        good = [i for i in positions if i not in bad]
        try:
            events = _EVENTS.validate_python([items[i][1] for i in good])
        except ValidationError as exc:
            _reject_invalid(exc, good, bad, rejected, items)
            continue  # every error of the batch is reported at once: the second pass succeeds
        return [(items[i][0], event) for i, event in zip(good, events, strict=True)]


def _reject_invalid(exc: ValidationError, good: list[int], bad: set[int], rejected: list[Rejection],
                    items: list[tuple[int, Any]]) -> None:
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = err["loc"]
        if not loc or not isinstance(loc[0], int):
            continue
        position = good[loc[0]]
        if position in bad:
            continue  # an event's first error is the one reported
        bad.add(position)
        where = ".".join(str(p) for p in loc[1:]) or "event"
        rejected.append(Rejection(index=items[position][0], field=where,
                                  message=err["msg"].removeprefix("Value error, ")))


def _unreadable_or_boolean(item: Any) -> Problem | None:
    """What is wrong with an item before its fields are validated: unreadable, or a boolean where an
    integer belongs (pydantic's lax int would read JSON true as 1)."""
    if item.__class__ is Unreadable:
        return Problem(item.field, item.reason)
    if item.__class__ is dict:
        for name in _INTEGERS:
            if item.get(name).__class__ is bool:
                return Problem(name, "must be a number, not a boolean")
    return None


def _problem(e: IngestEvent, window: TimeWindow) -> Problem | None:
    for check in CHECKS:
        problem = check(e)
        if problem is not None:
            return problem
    return window.problem(e.timestamp)  # in UTC since Staging


def _stage(e: IngestEvent, idx: int) -> tuple | Problem:
    """The staged row of an event (STAGED order), or what keeps it from being stored."""
    values = e.__dict__
    meta = dict(e.metadata)
    lifted: dict[str, str | None] = {}
    for key, column in ATTRIBUTION.items():
        value = meta.pop(key, None)
        if value.__class__ is float and not math.isfinite(value):
            return Problem(f"metadata.{key}", _NOT_FINITE)
        lifted[column] = None if value is None else str(value)[:200]
    sent = _SIGNALS_OF(values)
    if sent.count(None) != len(SIGNALS):
        meta[SIGNALS_KEY] = {k: v for k, v in zip(SIGNALS, sent, strict=True) if v is not None}
    if len(meta) > 1:
        meta = dict(sorted(meta.items()))  # key order must not change the content hash
    status = e.status
    is_timeout = e.is_timeout or status == "timeout"
    is_rate_limited = e.is_rate_limited or status == "rate_limited"
    client_cost = str(e.cost_usd) if e.cost_usd is not None else None
    raw_usage = e.raw_usage
    try:
        blob = to_json(_hashed(values, is_timeout, is_rate_limited, lifted, meta, client_cost))
        meta_json = to_json(meta)
        raw_json = None if raw_usage is None else to_json(raw_usage)
    except PydanticSerializationError:
        return _walk_event(e, lifted) or Problem("event", "cannot be serialized as JSON")
    if (b"\\u0000" in blob or b"NaN" in blob or b"Infinity" in blob
            or blob.count(b"{") + blob.count(b"[") > MAX_DEPTH):
        problem = _walk_event(e, lifted)
        if problem is not None:
            return problem
    if len(meta_json) > MAX_JSON_BYTES:
        return Problem("metadata", f"metadata is larger than {MAX_JSON_BYTES} bytes (16 KiB) as JSON")
    if raw_json is not None and len(raw_json) > MAX_JSON_BYTES:
        return Problem("raw_usage", f"raw_usage is larger than {MAX_JSON_BYTES} bytes as JSON")
    occurred_at = e.timestamp  # in UTC since Staging
    return (
        idx, e.request_id, e.source, e.provider, e.model, e.endpoint, e.input_tokens, e.output_tokens,
        e.cached_tokens, e.cache_write_tokens, e.reasoning_tokens, e.service_tier, e.cost_usd, e.currency,
        e.latency_ms, e.time_to_first_token_ms, status, e.error_code, e.retry_count, is_timeout, is_rate_limited,
        e.is_streaming, e.routed_from_model, e.cache_hit, e.prompt_hash, e.system_prompt_hash, e.task_type,
        lifted["team"], lifted["project"], lifted["feature"], lifted["end_user_id"], meta_json.decode(),
        None if raw_json is None else raw_json.decode(), occurred_at, hashlib.sha256(blob).digest(),
        _grouping_id(e.trace_id, meta, "trace_id"), _grouping_id(e.session_id, meta, "session_id"),
    )


def _grouping_id(sent: str | None, meta: dict[str, Any], key: str) -> str | None:
    """A trace or session id: the event's field, else the SDK tag of that name (tokentra.tags(session_id=...)
    rides in metadata, which stays as sent and is hashed already, so the copy changes no content hash)."""
    if sent is not None:
        return sent
    value = meta.get(key)
    if value.__class__ in (str, int) and str(value).strip():
        return str(value).strip()[:200]
    return None


def _hashed(values: dict[str, Any], is_timeout: bool, is_rate_limited: bool, lifted: dict[str, str | None],
            meta: dict[str, Any], client_cost: str | None) -> dict[str, Any]:
    """What the content hash covers, key for key in the order it always had."""
    body = dict(zip(_HASHED, _HASHED_OF(values), strict=True))
    body["is_timeout"] = is_timeout
    body["is_rate_limited"] = is_rate_limited
    body.update(lifted)
    body["metadata"] = meta
    body["client_cost_usd"] = client_cost
    for name in _LATER:
        if values[name] is not None:
            body[name] = values[name]
    return body


# ---------------------------------------------------------------- what Postgres cannot store
_NUL = "contains a NUL character (\\u0000), which text in Postgres cannot hold"
_SURROGATE = "contains an unpaired surrogate, which is not Unicode"
_NOT_FINITE = "NaN and Infinity are not numbers JSON or Postgres can store"
_DEEP = f"nests deeper than {MAX_DEPTH} levels"


def _walk_event(e: IngestEvent, lifted: dict[str, str | None]) -> Problem | None:
    back = {column: f"metadata.{key}" for key, column in ATTRIBUTION.items()}
    for name, value in e.__dict__.items():
        if name not in ("metadata", "raw_usage") and (problem := _walk(value, name, name, 0)) is not None:
            return problem
    for column, value in lifted.items():
        if (problem := _walk(value, back[column], back[column], 0)) is not None:
            return problem
    return _walk(e.metadata, "metadata", "metadata", 0) or _walk(e.raw_usage, "raw_usage", "raw_usage", 0)


def _walk(value: Any, path: str, root: str, depth: int) -> Problem | None:
    """The first thing under `value` Postgres cannot store, named by its path (too deep: by its root)."""
    if isinstance(value, str):
        return _text_problem(value, path)
    if isinstance(value, float):
        return None if math.isfinite(value) else Problem(path, _NOT_FINITE)
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            return Problem(root, _DEEP)
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in pairs:
            if isinstance(key, str) and (problem := _text_problem(key, path)) is not None:
                return Problem(path, "a key " + problem.reason)
            inner = f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]"
            if (problem := _walk(item, inner, root, depth + 1)) is not None:
                return problem
    return None


def _text_problem(text: str, path: str) -> Problem | None:
    if "\x00" in text:
        return Problem(path, _NUL)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return Problem(path, _SURROGATE)
    return None
