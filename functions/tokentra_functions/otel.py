"""POST /functions/v1/otel/v1/traces: OTLP/HTTP trace export; spans of LLM calls become usage events.

Spans following the OpenTelemetry GenAI semantic conventions (current `gen_ai.provider.name` names and
the older `gen_ai.system` ones, OpenLLMetry's spellings too) are stored through the same exactly-once
path as /ingest; every other span is counted as skipped and dropped.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, error, function_app, json_body, read_limited_body
from tokentra_functions.ingest import authorize, store_events
from tokentra_functions.models import ErrorBody

router = APIRouter(tags=["otel"])
log = logging.getLogger("tokentra.otel")
PROTOBUF, JSON = "application/x-protobuf", "application/json"

# Semconv names first, then the older and vendor spellings still emitted by instrumentations in use.
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
MODEL = ("gen_ai.response.model", "gen_ai.request.model")
INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
SERVICE_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier")
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
             "gen_ai.usage.output_tokens_details.reasoning")
# Provider names as the pricing tables know them; unlisted names are kept as sent (lower-cased).
PROVIDERS = {
    "aws.bedrock": "bedrock", "az.ai.openai": "azure", "azure.ai.openai": "azure", "az.ai.inference": "azure",
    "azure.ai.inference": "azure", "gcp.vertex_ai": "google", "gcp.gemini": "google", "gcp.gen_ai": "google",
    "vertex_ai": "google", "gemini": "google", "mistral_ai": "mistral", "x_ai": "xai",
}
# Attribute -> metadata key, lowest precedence first (a later attribute overrides an earlier one).
# feature/team/project/user_id are lifted into their own columns by IngestEvent.row.
METADATA = {
    "service.name": "service", "deployment.environment": "environment",
    "deployment.environment.name": "environment", "gen_ai.conversation.id": "conversation_id",
    "gen_ai.agent.name": "agent", "enduser.id": "user_id", "user.id": "user_id",
    "tokentra.feature": "feature", "tokentra.team": "team", "tokentra.project": "project",
    "tokentra.user_id": "user_id",
}
# The session a call belongs to: ours if set, else OpenTelemetry's session.id, else the GenAI conversation.
SESSION = ("tokentra.session_id", "session.id", "gen_ai.conversation.id")
# Agent and tool spans carry, where they carry usage at all, the sum of the model calls beneath them,
# which arrive as spans of their own (often in another export): counting both would double the cost.
AGGREGATE_OPERATIONS = {"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"}


class BadBody(ValueError):
    """The body is not an OTLP trace export in the declared encoding."""


# ---------------------------------------------------------------- the body, as the OpenAPI document shows it
# OTLP/HTTP's JSON encoding of ExportTraceServiceRequest (the fields read here; others are ignored). The
# handler decodes the body with the OTLP protobuf classes, which are what accept or refuse it.
class OtlpAnyValue(BaseModel):
    model_config = ConfigDict(extra="allow")

    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | str | None = Field(default=None, description="An int64; JSON strings carry large ones.")
    doubleValue: float | None = None
    bytesValue: str | None = Field(default=None, description="Base64.")
    arrayValue: dict[str, Any] | None = Field(default=None, description='{"values": [AnyValue, ...]}')
    kvlistValue: dict[str, Any] | None = Field(default=None, description='{"values": [KeyValue, ...]}')


class OtlpKeyValue(BaseModel):
    model_config = ConfigDict(extra="allow")

    key: str
    value: OtlpAnyValue


class OtlpStatus(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: int | str = Field(default=0, description="0 unset, 1 ok, 2 error (or STATUS_CODE_ERROR)")
    message: str | None = None


class OtlpSpan(BaseModel):
    model_config = ConfigDict(extra="allow")

    traceId: str = Field(description="16 bytes in hex (32 digits): with spanId, the idempotency key.")
    spanId: str = Field(description="8 bytes in hex (16 digits).")
    parentSpanId: str | None = None
    name: str | None = None
    kind: int | str | None = None
    startTimeUnixNano: int | str = Field(description="Unix time in nanoseconds (the call's timestamp).")
    endTimeUnixNano: int | str | None = None
    attributes: list[OtlpKeyValue] = Field(
        default_factory=list,
        description="GenAI semantic conventions: gen_ai.provider.name (or gen_ai.system), gen_ai.response.model "
        "(or gen_ai.request.model), gen_ai.usage.input_tokens, gen_ai.usage.output_tokens, ...",
    )
    status: OtlpStatus | None = None


class OtlpScopeSpans(BaseModel):
    model_config = ConfigDict(extra="allow")

    scope: dict[str, Any] | None = None
    spans: list[OtlpSpan] = Field(default_factory=list)


class OtlpResource(BaseModel):
    model_config = ConfigDict(extra="allow")

    attributes: list[OtlpKeyValue] = Field(default_factory=list)


class OtlpResourceSpans(BaseModel):
    model_config = ConfigDict(extra="allow")

    resource: OtlpResource | None = None
    scopeSpans: list[OtlpScopeSpans] = Field(default_factory=list)


class OtlpTraceExport(BaseModel):
    """ExportTraceServiceRequest in OTLP/JSON; the same message in protobuf is accepted too."""

    model_config = ConfigDict(extra="allow")

    resourceSpans: list[OtlpResourceSpans] = Field(default_factory=list)


class OtlpExportResponse(BaseModel):
    """ExportTraceServiceResponse in OTLP/JSON: empty, or the spans refused and why."""

    partialSuccess: dict[str, Any] | None = Field(default=None,
                                                  description='{"rejectedSpans": n, "errorMessage": "..."}')


def _openapi_body() -> dict[str, Any]:
    body = json_body(OtlpTraceExport)
    body["requestBody"]["content"][PROTOBUF] = {"schema": {"type": "string", "format": "binary"}}
    return body


class OtelResult(BaseModel):
    """TokenTRA's account of one export, sent in the x-tokentra-result header."""

    accepted: int
    duplicates: int
    unpriced: int
    skipped: int
    rejected: int


# ---------------------------------------------------------------- decoding
def inflate(body: bytes, limit: int) -> bytes | None:
    """The gunzipped body, or None when it inflates past limit (a zip bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadBody("the body is not valid gzip") from exc
    if len(out) > limit:
        return None
    if not inflater.eof:
        raise BadBody("the gzip stream is truncated")
    return out


def decode(body: bytes, media: str) -> ExportTraceServiceRequest:
    try:
        if media == PROTOBUF:
            return ExportTraceServiceRequest.FromString(body)
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise BadBody("the body must be a JSON object")
        _hex_ids_to_base64(payload)
        return json_format.ParseDict(payload, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        raise BadBody(f"the body is not an OTLP trace export ({media})") from exc


def _hex_ids_to_base64(payload: dict) -> None:
    """OTLP JSON writes trace and span ids in hex where the proto3 JSON mapping expects base64.

    Hex digits are valid base64, so parsing without this would silently store the wrong ids."""
    for rs in _items(payload, "resourceSpans", "resource_spans"):
        for ss in _items(rs, "scopeSpans", "scope_spans"):
            for span in _items(ss, "spans"):
                _rewrite(span, "traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")
                for link in _items(span, "links"):
                    _rewrite(link, "traceId", "trace_id", "spanId", "span_id")


def _items(obj: Any, *keys: str) -> list:
    for key in keys:
        value = obj.get(key) if isinstance(obj, dict) else None
        if isinstance(value, list):
            return value
    return []


def _rewrite(obj: Any, *keys: str) -> None:
    for key in keys:
        if isinstance(obj, dict) and isinstance(obj.get(key), str):
            obj[key] = base64.b64encode(bytes.fromhex(obj[key])).decode()


# ---------------------------------------------------------------- spans to events
def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def attributes(kvs: list[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((attrs[k] for k in keys if attrs.get(k) not in (None, "")), None)


def _count(attrs: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """A token count; some SDKs send them as doubles or strings. Negatives are left for validation."""
    v = _first(attrs, keys)
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and math.isfinite(v):
        return int(v)
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    return v if isinstance(v, int) else None


def _time(unix_nano: int) -> datetime:
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    try:
        return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanos // 1000)
    except (OverflowError, ValueError, OSError):  # past year 9999: validation refuses it as in the future
        return datetime.max.replace(tzinfo=UTC)


def _text(attrs: dict[str, Any], keys: tuple[str, ...], limit: int) -> str | None:
    v = _first(attrs, keys)
    return None if v is None else str(v)[:limit]


def _tokens(attrs: dict[str, Any], inp: int, out: int) -> dict[str, int]:
    cached, written = _count(attrs, CACHE_READ) or 0, _count(attrs, CACHE_WRITE) or 0
    reasoning = _count(attrs, REASONING) or 0
    # Semconv: gen_ai.usage.input_tokens SHOULD include cached tokens, and we take it so. Some
    # Anthropic instrumentations pass Anthropic's own input_tokens, which excludes cache reads and
    # writes; when the cache parts exceed the input the count cannot have included them, so add them.
    # (When they do not exceed it the two readings cannot be told apart; the semconv one wins.)
    if cached + written > inp:
        inp += cached + written
    # Likewise output includes reasoning (OpenAI's convention); Gemini-style counts leave it out.
    if reasoning > out:
        out += reasoning
    return {"input_tokens": inp, "output_tokens": out, "cached_tokens": cached,
            "cache_write_tokens": written, "reasoning_tokens": reasoning}


def span_event(span: Span, resource: dict[str, Any]) -> dict | None:
    """The usage event of one GenAI span, or None when the span is not a model call we can count."""
    attrs = attributes(span.attributes)
    provider, model = _first(attrs, PROVIDER), _first(attrs, MODEL)
    operation = _text(attrs, ("gen_ai.operation.name", "llm.request.type"), 100)
    failed = span.status.code == Status.STATUS_CODE_ERROR
    inp, out = _count(attrs, INPUT), _count(attrs, OUTPUT)
    if not provider or not model or operation in AGGREGATE_OPERATIONS:
        return None
    # A failed call usually reports no usage but is still a call: kept for error rates, at zero tokens.
    if inp is None and out is None and not failed:
        return None
    provider = str(provider).strip().lower()
    merged = {**resource, **attrs}  # a span's own attribute overrides its resource's
    metadata = {key: merged[attr] for attr, key in METADATA.items() if merged.get(attr) not in (None, "")}
    latency = (span.end_time_unix_nano - span.start_time_unix_nano) // 1_000_000
    ttfc = _first(attrs, ("gen_ai.response.time_to_first_chunk",))  # seconds, per semconv
    if not isinstance(ttfc, int | float) or isinstance(ttfc, bool) or not 0 <= ttfc <= 86_400:
        ttfc = None
    return {
        "request_id": f"otel:{span.trace_id.hex()}:{span.span_id.hex()}",
        "source": "otel",
        "provider": PROVIDERS.get(provider, provider),
        "model": str(model),
        "endpoint": operation,
        **_tokens(attrs, inp or 0, out or 0),
        "service_tier": _text(attrs, SERVICE_TIER, 50),
        "latency_ms": latency if span.end_time_unix_nano and 0 <= latency <= 86_400_000 else None,
        "time_to_first_token_ms": None if ttfc is None else round(ttfc * 1000),
        "status": "error" if failed else "success",
        "error_code": _text(attrs, ("error.type",), 100) if failed else None,
        "is_streaming": _first(attrs, ("gen_ai.request.stream", "llm.is_streaming")) is True,
        "metadata": metadata,
        "trace_id": span.trace_id.hex() or None,
        "session_id": _text(merged, SESSION, 200),
        "raw_usage": {k: v for k, v in attrs.items() if k.startswith("gen_ai.usage.")} or None,
        "timestamp": _time(span.start_time_unix_nano),
    }


@dataclass
class Converted:
    events: list[dict] = field(default_factory=list)
    spans: list[str] = field(default_factory=list)  # "trace/span" of each event, for error messages
    skipped: int = 0
    invalid: list[str] = field(default_factory=list)  # GenAI spans that could not become events


def convert(export: ExportTraceServiceRequest) -> Converted:
    out = Converted()
    for rs in export.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                event = span_event(span, resource)
                if event is None:
                    out.skipped += 1
                elif len(span.trace_id) != 16 or len(span.span_id) != 8:
                    # The ids are the idempotency key: without them a retried export would store twice.
                    out.invalid.append(f"span {span.span_id.hex() or '?'}: trace_id or span_id is malformed")
                else:
                    out.events.append(event)
                    out.spans.append(f"{span.trace_id.hex()}/{span.span_id.hex()}")
    return out


# ---------------------------------------------------------------- the endpoint
def _message(problems: list[str]) -> str:
    shown = "; ".join(problems[:5])
    return shown + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")


@router.post(
    "/otel/v1/traces",
    responses={200: {"description": "ExportTraceServiceResponse (JSON or protobuf, as the request)",
                      "content": {JSON: {"schema": OtlpExportResponse.model_json_schema()},
                                  PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}},
               400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 413: {"model": ErrorBody},
               415: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    summary="OTLP/HTTP trace export: GenAI spans become usage events",
    openapi_extra=_openapi_body(),
)
async def export_traces(request: Request, pool: Pool) -> Response:
    settings = get_settings()
    key = await authorize(request, pool)
    if isinstance(key, JSONResponse):
        return key
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if media not in (PROTOBUF, JSON) or encoding not in ("identity", "gzip"):
        return error(415, "unsupported_media_type",
                     f"send {PROTOBUF} or {JSON}, uncompressed or with Content-Encoding: gzip")
    body = await read_limited_body(request, settings.ingest_max_bytes)
    try:
        if body is not None and encoding == "gzip":
            body = inflate(body, settings.ingest_max_bytes)
        if body is None:
            return error(413, "too_large", f"a request carries at most {settings.ingest_max_bytes} bytes")
        spans = convert(decode(body, media))
    except BadBody as exc:
        return error(400, "bad_request", str(exc))

    result = await store_events(pool, key, spans.events)
    problems = spans.invalid + [f"span {spans.spans[r.index]}: {r.field}: {r.message}"
                                for r in result.rejected]
    summary = OtelResult(accepted=result.accepted, duplicates=result.duplicates, unpriced=result.unpriced,
                         skipped=spans.skipped, rejected=len(problems))
    log.info("otel org=%s %s", key.org_id, summary.model_dump_json())
    headers = {"x-tokentra-result": summary.model_dump_json()}
    if media == PROTOBUF:
        reply = ExportTraceServiceResponse()
        if problems:
            reply.partial_success.rejected_spans = len(problems)
            reply.partial_success.error_message = _message(problems)
        return Response(reply.SerializeToString(), media_type=PROTOBUF, headers=headers)
    partial = {"partialSuccess": {"rejectedSpans": len(problems), "errorMessage": _message(problems)}}
    return JSONResponse(partial if problems else {}, headers=headers)


app = function_app(router, title="TokenTRA OTLP intake")
