"""The OTLP/HTTP trace intake, over real HTTP against the real database, with real OTLP messages."""

from __future__ import annotations

import gzip
import json
import os
import time

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tokentra_core.db import connect

PROTOBUF, JSON = "application/x-protobuf", "application/json"


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = AnyValue(double_value=value)
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def span(attrs: dict, *, error: bool = False, age_s: float = 5.0, duration_ms: int = 850,
         name: str = "chat") -> Span:
    start = time.time_ns() - int(age_s * 1e9)
    return Span(
        trace_id=os.urandom(16), span_id=os.urandom(8), name=name, kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start, end_time_unix_nano=start + duration_ms * 1_000_000,
        attributes=[kv(k, v) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK),
    )


def export(*spans: Span, resource: dict | None = None) -> ExportTraceServiceRequest:
    resource = {"service.name": "checkout", "tokentra.team": "payments"} if resource is None else resource
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv(k, v) for k, v in resource.items()]),
        scope_spans=[ScopeSpans(spans=list(spans))],
    )])


def otlp_json(msg: ExportTraceServiceRequest) -> dict:
    """The OTLP JSON encoding: the proto3 JSON mapping, except that ids are hex rather than base64."""
    import base64

    body = json_format.MessageToDict(msg)
    for rs in body.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for s in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in s:
                        s[key] = base64.b64decode(s[key]).hex()
    return body


def post(url: str, key: str | None, msg, encoding: str = PROTOBUF,
         headers: dict | None = None) -> httpx.Response:
    if isinstance(msg, bytes):
        content = msg
    elif encoding == PROTOBUF:
        content = msg.SerializeToString()
    else:
        content = json.dumps(otlp_json(msg) if isinstance(msg, ExportTraceServiceRequest) else msg).encode()
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    sent = {"Content-Type": encoding, **auth, **(headers or {})}
    return httpx.post(f"{url}/otel/v1/traces", content=content, headers=sent, timeout=30)


def result(r: httpx.Response) -> dict:
    return json.loads(r.headers["x-tokentra-result"])


def counts(r: httpx.Response) -> tuple[int, int, int, int]:
    """(accepted, duplicates, skipped, rejected) from TokenTRA's summary header."""
    summary = json.loads(r.headers["x-tokentra-result"])
    return summary["accepted"], summary["duplicates"], summary["skipped"], summary["rejected"]


def tokens(row: dict) -> tuple[int, int, int, int, int]:
    return (row["input_tokens"], row["output_tokens"], row["cached_tokens"], row["cache_write_tokens"],
            row["reasoning_tokens"])


def partial_success(r: httpx.Response) -> tuple[int, str]:
    """(rejected spans, error message) from either encoding of ExportTraceServiceResponse."""
    if r.headers["content-type"].startswith(PROTOBUF):
        reply = ExportTraceServiceResponse.FromString(r.content)
        return reply.partial_success.rejected_spans, reply.partial_success.error_message
    partial = r.json().get("partialSuccess", {})
    return partial.get("rejectedSpans", 0), partial.get("errorMessage", "")


def stored(dsn: str, org: str) -> dict[str, dict]:
    with connect(dsn) as conn:
        rows = conn.execute("select * from public.usage_records where org_id = %s", (org,)).fetchall()
    return {row["request_id"]: row for row in rows}


def request_id(s: Span) -> str:
    return f"otel:{s.trace_id.hex()}:{s.span_id.hex()}"


NEW_OPENAI = {  # the current conventions
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300, "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.usage.reasoning.output_tokens": 64, "gen_ai.conversation.id": "conv-9",
    "tokentra.feature": "summarize", "tokentra.user_id": "u-1",
}
OLD_ANTHROPIC = {  # gen_ai.system and OpenLLMetry's usage spellings, counts inclusive of the cache
    "gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-sonnet-4-20250514",
    "llm.request.type": "chat",
    "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 50,
    "gen_ai.usage.cache_read_input_tokens": 600, "gen_ai.usage.cache_creation_input_tokens": 100,
}
HTTP_ONLY = {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat/completions"}


@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
def test_genai_spans_of_both_conventions_become_usage_rows(functions_url, tenant, dsn, encoding):
    new, old = span(NEW_OPENAI), span(OLD_ANTHROPIC, duration_ms=1234)
    bedrock = span({"gen_ai.provider.name": "aws.bedrock", "gen_ai.request.model": "amazon.nova-lite-v1:0",
                    "gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 2})
    r = post(functions_url, tenant.key, export(new, old, bedrock, span(HTTP_ONLY, name="POST")), encoding)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(encoding)
    assert partial_success(r) == (0, "")
    if encoding == JSON:
        assert r.json() == {}
    assert counts(r) == (3, 0, 1, 0)

    rows = stored(dsn, tenant.org_id)
    assert set(rows) == {request_id(new), request_id(old), request_id(bedrock)}
    assert all(row["source"] == "otel" for row in rows.values())
    a = rows[request_id(new)]
    assert (a["provider"], a["model"], a["endpoint"]) == ("openai", "gpt-4o-mini-2024-07-18", "chat")
    assert tokens(a) == (1200, 300, 200, 0, 64)
    assert (a["feature"], a["team"], a["end_user_id"]) == ("summarize", "payments", "u-1")
    assert a["metadata"] == {"service": "checkout", "conversation_id": "conv-9"}
    assert (a["status"], a["latency_ms"]) == ("success", 850)
    assert str(a["api_key_id"]) == tenant.key_id
    b = rows[request_id(old)]
    assert (b["provider"], b["model"], b["endpoint"], b["latency_ms"]) == (
        "anthropic", "claude-sonnet-4-20250514", "chat", 1234)
    assert tokens(b) == (1000, 50, 600, 100, 0)
    assert b["raw_usage"]["gen_ai.usage.prompt_tokens"] == 1000
    assert rows[request_id(bedrock)]["provider"] == "bedrock"


def test_cache_counts_left_out_of_input_tokens_are_added_back(functions_url, tenant, dsn):
    # Anthropic's own input_tokens excludes the cache; 10 < 500 + 100 shows this span reported it so.
    s = span({"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-3-5-haiku-20241022",
              "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 20,
              "gen_ai.usage.cache_read.input_tokens": 500, "gen_ai.usage.cache_creation.input_tokens": 100})
    assert result(post(functions_url, tenant.key, export(s)))["accepted"] == 1
    row = stored(dsn, tenant.org_id)[request_id(s)]
    assert (row["input_tokens"], row["cached_tokens"], row["cache_write_tokens"]) == (610, 500, 100)


@pytest.mark.parametrize("system,expected", [("az.ai.openai", "azure"), ("gcp.vertex_ai", "google"),
                                             ("gcp.gemini", "google"), ("OpenAI", "openai")])
def test_provider_names_are_normalized(functions_url, tenant, dsn, system, expected):
    s = span({"gen_ai.system": system, "gen_ai.request.model": "m-1", "gen_ai.usage.input_tokens": 1})
    post(functions_url, tenant.key, export(s))
    assert stored(dsn, tenant.org_id)[request_id(s)]["provider"] == expected


def test_failed_call_is_stored_as_an_error_even_without_usage(functions_url, tenant, dsn):
    s = span({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
              "error.type": "RateLimitError"}, error=True)
    r = post(functions_url, tenant.key, export(s), JSON)
    assert result(r)["accepted"] == 1
    row = stored(dsn, tenant.org_id)[request_id(s)]
    assert (row["status"], row["error_code"], row["input_tokens"], row["output_tokens"]) == (
        "error", "RateLimitError", 0, 0)


def test_spans_that_are_not_countable_model_calls_are_skipped(functions_url, tenant, dsn):
    spans = [
        span(HTTP_ONLY),
        span({"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 5}),  # no model
        span({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5}),  # no provider
        span({"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}),  # no usage, no error
        # An agent span's usage sums the model calls beneath it, which are reported as their own spans.
        span({"gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai",
              "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5000}),
    ]
    r = post(functions_url, tenant.key, export(*spans))
    assert r.status_code == 200
    assert counts(r) == (0, 0, 5, 0)
    assert stored(dsn, tenant.org_id) == {}


def test_resending_an_export_in_either_encoding_stores_nothing_new(functions_url, tenant, dsn):
    batch = export(span(NEW_OPENAI), span(OLD_ANTHROPIC), span(HTTP_ONLY))
    assert result(post(functions_url, tenant.key, batch))["accepted"] == 2
    # The same ids through the JSON encoding (hex) must name the same spans as through protobuf (bytes).
    for encoding in (PROTOBUF, JSON):
        r = post(functions_url, tenant.key, batch, encoding)
        assert r.status_code == 200 and partial_success(r) == (0, "")
        assert (result(r)["accepted"], result(r)["duplicates"], result(r)["skipped"]) == (0, 2, 1)
    assert len(stored(dsn, tenant.org_id)) == 2


@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
def test_rejected_spans_are_reported_as_partial_success(functions_url, tenant, dsn, encoding):
    good = span(NEW_OPENAI)
    too_old = span(NEW_OPENAI, age_s=500 * 86_400)
    negative = span({**NEW_OPENAI, "gen_ai.usage.output_tokens": -3,
                     "gen_ai.usage.reasoning.output_tokens": 0})
    r = post(functions_url, tenant.key, export(good, too_old, negative), encoding)
    assert r.status_code == 200
    rejected, message = partial_success(r)
    assert rejected == 2 and result(r)["rejected"] == 2 and result(r)["accepted"] == 1
    assert too_old.span_id.hex() in message and "retention" in message
    assert negative.span_id.hex() in message and "output_tokens" in message
    assert set(stored(dsn, tenant.org_id)) == {request_id(good)}


def test_hand_written_otlp_json_as_an_sdk_sends_it(functions_url, tenant, dsn):
    start = time.time_ns() - 10**9
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173", "name": "chat gpt-4o", "kind": 3,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 420_000_000),
            "attributes": [
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "321"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 12}},
                {"key": "gen_ai.request.stream", "value": {"boolValue": True}},
                {"key": "some.future.field", "value": {"stringValue": "x"}, "unknownKey": 1},
            ],
            "status": {"code": 1},
        }]}],
    }]}
    r = post(functions_url, tenant.key, body, "application/json; charset=utf-8")
    assert r.status_code == 200, r.text
    row = stored(dsn, tenant.org_id)["otel:5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"]
    assert (row["model"], row["latency_ms"]) == ("gpt-4o", 420)
    assert tokens(row) == (321, 12, 0, 0, 0)
    assert row["is_streaming"] and row["metadata"] == {"service": "web"}


def test_gzip_bodies_are_accepted(functions_url, tenant, dsn):
    s = span(NEW_OPENAI)
    r = post(functions_url, tenant.key, gzip.compress(export(s).SerializeToString()),
             headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and result(r)["accepted"] == 1
    bomb = gzip.compress(b"\0" * (2 * 1024 * 1024))
    assert post(functions_url, tenant.key, bomb, headers={"Content-Encoding": "gzip"}).status_code == 413


def test_bad_key_is_401(functions_url, tenant, dsn):
    r = post(functions_url, "tt_live_" + "x" * 43, export(span(NEW_OPENAI)))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert post(functions_url, None, export(span(NEW_OPENAI))).status_code == 401
    assert stored(dsn, tenant.org_id) == {}


def test_x_api_key_header_is_accepted(functions_url, tenant):
    r = post(functions_url, None, export(span(NEW_OPENAI)), headers={"x-api-key": tenant.key})
    assert r.status_code == 200 and result(r)["accepted"] == 1


@pytest.mark.parametrize("encoding,body", [
    (PROTOBUF, b"\x0a\xff\xff\xff\xff\x0f garbage"),
    (JSON, b"{not json"),
    (JSON, b"[1, 2]"),
    (JSON, json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex"}]}]}]}).encode()),
    (JSON, json.dumps({"resourceSpans": "nope"}).encode()),
])
def test_undecodable_bodies_are_400(functions_url, tenant, encoding, body):
    r = post(functions_url, tenant.key, body, encoding)
    assert r.status_code == 400, r.text


def test_other_content_types_are_415_and_big_bodies_413(functions_url, tenant):
    assert post(functions_url, tenant.key, b"{}", "text/plain").status_code == 415
    assert post(functions_url, tenant.key, b"{}", JSON, headers={"Content-Encoding": "br"}).status_code == 415
    big = export(*[span({**NEW_OPENAI, "pad": "x" * 10_000}) for _ in range(120)])
    assert post(functions_url, tenant.key, big).status_code == 413


def test_the_function_deploys_alone():
    from tokentra_functions.otel import app

    assert "/functions/v1/otel/v1/traces" in app.openapi()["paths"]
