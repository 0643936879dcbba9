"""Local servers speaking OpenAI's and Anthropic's admin usage and cost APIs, fed from a ledger of atomic
billed records whose truth the caller knows.

OpenAI (under `openai_base_url`, which ends in /v1 like the public one):
    GET /v1/organization/usage/completions, /v1/organization/usage/embeddings, /v1/organization/costs
    (start_time/end_time in Unix seconds, bucket_width 1m|1h|1d, group_by repeated or comma-separated,
    limit, page; `Authorization: Bearer <admin key>`).
Anthropic (under `anthropic_base_url`):
    GET /v1/organizations/usage_report/messages, /v1/organizations/cost_report
    (starting_at/ending_at in RFC 3339, bucket_width, group_by[], limit, page; `x-api-key` and
    `anthropic-version` headers; cost amounts are decimal strings in cents).

Both paginate over time buckets (`limit` buckets a page, `has_more`, an opaque `next_page` bound to the
query), aggregate the ledger to the requested buckets and groupings (a field not grouped by is null),
answer empty buckets, check the admin key, and answer errors in each provider's error shape. Faults are
injectable: a rate limit (429 with retry-after), server errors, a failure or a stall at the n-th page of
an endpoint (to crash a client mid-pagination).

Ledger conventions (the providers' own): OpenAIUsageRecord.input_tokens counts every input token, cached
and audio ones included (input_cached_tokens and input_audio_tokens are parts of it), output_tokens
includes output_audio_tokens; AnthropicUsageRecord.uncached_input_tokens excludes cache reads and cache
writes, which are counted apart. Amounts are Decimals: USD for OpenAI, cents for Anthropic. Records are
read at request time, so a caller may revise the ledger between syncs (the providers revise recent days).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tokentra_dev.testing.http_server import LocalHTTPServer

__all__ = [
    "OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY", "AdminLedger", "AnthropicCostRecord", "AnthropicUsageRecord",
    "COST_DETAIL", "Fault", "OpenAICostRecord", "OpenAIUsageRecord", "ProviderAdminServer", "Request",
]

OPENAI_ADMIN_KEY = "sk-admin-SECRET-openai-0123456789abcdef"
ANTHROPIC_ADMIN_KEY = "sk-ant-admin01-SECRET-anthropic-0123456789abcdef"

WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
# Buckets a page: (default, max) per width, as both providers document them.
USAGE_LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}


# ---------------------------------------------------------------- the ledger
@dataclass(frozen=True)
class OpenAIUsageRecord:
    """One billed OpenAI call (or any atom of usage): input_tokens includes the cached and audio tokens."""

    ts: datetime
    model: str
    project_id: str | None = None
    api_key_id: str | None = None
    batch: bool = False
    service_tier: str = "default"
    input_tokens: int = 0
    input_cached_tokens: int = 0
    output_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    num_model_requests: int = 1
    kind: Literal["completions", "embeddings"] = "completions"
    user_id: str | None = None


@dataclass(frozen=True)
class OpenAICostRecord:
    """One billed OpenAI cost atom; line_item as the costs API names it ("gpt-4o-2024-08-06, input")."""

    ts: datetime
    line_item: str
    project_id: str | None
    amount_usd: Decimal


@dataclass(frozen=True)
class AnthropicUsageRecord:
    """One billed Anthropic call: uncached input, cache reads and the two cache-write TTLs are disjoint."""

    ts: datetime
    model: str
    api_key_id: str | None = None
    workspace_id: str | None = None
    service_tier: str = "standard"
    context_window: str = "0-200k"
    uncached_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_5m: int = 0
    cache_creation_1h: int = 0
    output_tokens: int = 0
    web_search_requests: int = 0


@dataclass(frozen=True)
class AnthropicCostRecord:
    """One billed Anthropic cost atom, in cents. cost_type: tokens, web_search or code_execution;
    token_type (tokens only): uncached_input_tokens, output_tokens, cache_read_input_tokens,
    cache_creation.ephemeral_5m_input_tokens or cache_creation.ephemeral_1h_input_tokens."""

    ts: datetime
    workspace_id: str | None
    description: str
    model: str | None
    cost_type: str
    token_type: str | None
    service_tier: str | None
    context_window: str | None
    amount_cents: Decimal


@dataclass
class AdminLedger:
    """What the providers bill, atom by atom; the servers aggregate it to what a report shows."""

    openai_usage: list[OpenAIUsageRecord] = field(default_factory=list)
    openai_costs: list[OpenAICostRecord] = field(default_factory=list)
    anthropic_usage: list[AnthropicUsageRecord] = field(default_factory=list)
    anthropic_costs: list[AnthropicCostRecord] = field(default_factory=list)


# ---------------------------------------------------------------- faults and the request log
@dataclass
class Fault:
    """Answer `status` (or stall `delay` seconds first) to the next `times` requests that match: `path`
    (a suffix such as "usage/completions"; None for any) and `page` (0 for a window's first page, n for
    the n-th page after it; None for any)."""

    status: int | None = 500
    times: int = 1
    path: str | None = None
    page: int | None = None
    retry_after: str | None = None
    delay: float = 0.0

    def matches(self, path: str, page: int) -> bool:
        return (self.times > 0 and (self.path is None or path.endswith(self.path))
                and (self.page is None or self.page == page))


@dataclass(frozen=True)
class Request:
    path: str
    params: dict[str, list[str]]
    page: int  # the page's index within its query (0 = first)
    status: int


class _Query:
    """A validated report query: the buckets it covers and how to group."""

    def __init__(self, start: int, end: int, width: str, limit: int, group_by: list[str], offset: int,
                 fingerprint: str) -> None:
        self.start, self.end, self.width, self.limit = start, end, width, limit
        self.group_by, self.offset, self.fingerprint = group_by, offset, fingerprint

    def buckets(self) -> list[tuple[int, int]]:
        step = WIDTHS[self.width]
        first = self.start - self.start % step
        edges = range(first, self.end, step)
        return [(b, b + step) for b in edges]


class _Refusal(Exception):
    def __init__(self, status: int, kind: str, message: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.param = status, kind, message, param
        self.headers = headers or {}


# ---------------------------------------------------------------- the server
class ProviderAdminServer(LocalHTTPServer):
    """Both providers' admin report APIs on one loopback port, from `ledger`.

    `now` bounds what is reported (usage after it has not happened yet); default: the wall clock."""

    def __init__(self, ledger: AdminLedger | None = None, *, openai_key: str = OPENAI_ADMIN_KEY,
                 anthropic_key: str = ANTHROPIC_ADMIN_KEY, now: datetime | None = None) -> None:
        super().__init__(_Handler)
        self.ledger = ledger or AdminLedger()
        self.openai_key, self.anthropic_key = openai_key, anthropic_key
        self.now = now
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._index: dict[int, tuple[list[Any], list[int], list[Any]]] = {}
        # A broken provider: has_more without the next_page to follow it.
        self.truncate_cursors = False

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def pages_served(self, path_suffix: str | None = None) -> list[Request]:
        """Requests answered 200 (optionally for one endpoint), in order."""
        with self._lock:
            return [r for r in self.requests if r.status == 200
                    and (path_suffix is None or r.path.endswith(path_suffix))]

    def _fault(self, path: str, page: int) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(path, page):
                    fault.times -= 1
                    return fault
        return None

    def _log(self, path: str, params: dict[str, list[str]], page: int, status: int) -> None:
        with self._lock:
            self.requests.append(Request(path, params, page, status))

    def _in_page(self, records: list[Any], query: _Query) -> list[Any]:
        """The records in the page's buckets, from an index by time that is rebuilt whenever the ledger
        list changed (compared element by element: a caller may revise the ledger between requests)."""
        buckets, _ = _window(query)
        if not buckets:
            return []
        with self._lock:
            entry = self._index.get(id(records))
            if entry is None or entry[0] != records:
                ordered = sorted(records, key=lambda r: _epoch(r.ts))
                entry = (list(records), [_epoch(r.ts) for r in ordered], ordered)
                self._index[id(records)] = entry
        _, epochs, ordered = entry
        low, high = max(buckets[0][0], query.start), min(buckets[-1][1], query.end)
        return ordered[bisect_left(epochs, low):bisect_left(epochs, high)]

    def _now(self) -> int:
        return int((self.now or datetime.now(UTC)).timestamp())

    # ---- handling
    def answer(self, path: str, params: dict[str, list[str]],
               headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        anthropic = path.startswith("/v1/organizations/")
        page = _page_index(params)
        try:
            if not anthropic and not path.startswith("/v1/organization/"):
                raise _Refusal(404, "not_found_error" if anthropic else "invalid_request_error",
                               f"Unknown path {path}")
            self._authenticate(anthropic, headers)
            fault = self._fault(path, page)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status is not None:
                    kind = "rate_limit_error" if fault.status == 429 else (
                        "overloaded_error" if fault.status == 529 else "api_error")
                    extra = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
                    raise _Refusal(fault.status, kind, f"Injected status {fault.status}", headers=extra)
            if anthropic:
                payload = self._anthropic(path, params)
            else:
                payload = self._openai(path, params)
        except _Refusal as refusal:
            self._log(path, params, page, refusal.status)
            return refusal.status, _error_body(refusal, anthropic), refusal.headers
        self._log(path, params, page, 200)
        if self.truncate_cursors:
            payload["next_page"] = None
        return 200, _dumps(payload), {}

    def _authenticate(self, anthropic: bool, headers: dict[str, str]) -> None:
        if anthropic:
            if not headers.get("anthropic-version"):
                raise _Refusal(400, "invalid_request_error", "anthropic-version: header is required")
            if headers.get("x-api-key") != self.anthropic_key:
                raise _Refusal(401, "authentication_error", "invalid x-api-key")
            return
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] != self.openai_key:
            # OpenAI echoes (part of) the key it refused: a client must not record its message as is.
            raise _Refusal(401, "invalid_request_error", f"Incorrect API key provided: {auth[7:]}. You must be "
                           "an organization owner with an admin key.")

    # ---- OpenAI
    def _openai(self, path: str, params: dict[str, list[str]]) -> dict[str, Any]:
        if path == "/v1/organization/usage/completions":
            query = self._openai_query(params, ("project_id", "user_id", "api_key_id", "model", "batch",
                                                "service_tier"), USAGE_LIMITS)
            records = [r for r in self._in_page(self.ledger.openai_usage, query) if r.kind == "completions"]
            return self._openai_page(query, records, _openai_completions)
        if path == "/v1/organization/usage/embeddings":
            query = self._openai_query(params, ("project_id", "user_id", "api_key_id", "model"), USAGE_LIMITS)
            records = [r for r in self._in_page(self.ledger.openai_usage, query) if r.kind == "embeddings"]
            return self._openai_page(query, records, _openai_embeddings)
        if path == "/v1/organization/costs":
            query = self._openai_query(params, ("project_id", "line_item"), {"1d": (7, 180)})
            return self._openai_page(query, self._in_page(self.ledger.openai_costs, query), _openai_costs)
        raise _Refusal(404, "invalid_request_error", f"Unknown path {path}")

    def _openai_query(self, params: dict[str, list[str]], allowed: Sequence[str],
                      limits: dict[str, tuple[int, int]]) -> _Query:
        start = _int_param(params, "start_time", required=True)
        end = _int_param(params, "end_time") or self._now()
        return _query(params, start, end, allowed, limits, "group_by")

    def _openai_page(self, query: _Query, records: Iterable[Any], result: Any) -> dict[str, Any]:
        return _page(query, records, result, lambda start, end: {"object": "bucket", "start_time": start,
                                                                 "end_time": end}, object="page")

    # ---- Anthropic
    def _anthropic(self, path: str, params: dict[str, list[str]]) -> dict[str, Any]:
        if path == "/v1/organizations/usage_report/messages":
            query = self._anthropic_query(params, ("api_key_id", "workspace_id", "model", "service_tier",
                                                   "context_window"), USAGE_LIMITS)
            return self._anthropic_page(query, self._in_page(self.ledger.anthropic_usage, query), _anthropic_usage)
        if path == "/v1/organizations/cost_report":
            query = self._anthropic_query(params, ("workspace_id", "description"), {"1d": (7, 31)})
            return self._anthropic_page(query, self._in_page(self.ledger.anthropic_costs, query), _anthropic_cost)
        raise _Refusal(404, "not_found_error", f"Unknown path {path}")

    def _anthropic_query(self, params: dict[str, list[str]], allowed: Sequence[str],
                         limits: dict[str, tuple[int, int]]) -> _Query:
        start = _time_param(params, "starting_at", required=True)
        end = _time_param(params, "ending_at") or self._now()
        return _query(params, start, end, allowed, limits, "group_by[]")

    def _anthropic_page(self, query: _Query, records: Iterable[Any], result: Any) -> dict[str, Any]:
        return _page(query, records, result, lambda start, end: {"starting_at": _rfc3339(start),
                                                                 "ending_at": _rfc3339(end)})


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner: ProviderAdminServer = self.server.owner  # type: ignore[attr-defined]
        status, body, extra = owner.answer(split.path, params, headers)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


# ---------------------------------------------------------------- query parsing
def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _page_index(params: dict[str, list[str]]) -> int:
    """The index of the page a request asks for within its query (0: the first; -1: a bad cursor)."""
    token = _first(params, "page")
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["p"])
    except (ValueError, KeyError, TypeError):
        return -1


def _int_param(params: dict[str, list[str]], name: str, required: bool = False) -> int | None:
    raw = _first(params, name)
    if not raw:
        if required:
            raise _Refusal(400, "invalid_request_error", f"{name}: is required", name)
        return None
    try:
        return int(raw)
    except ValueError:
        raise _Refusal(400, "invalid_request_error", f"{name}: must be an integer (Unix seconds)", name) from None


def _time_param(params: dict[str, list[str]], name: str, required: bool = False) -> int | None:
    raw = _first(params, name)
    if not raw:
        if required:
            raise _Refusal(400, "invalid_request_error", f"{name}: is required", name)
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _Refusal(400, "invalid_request_error", f"{name}: must be an RFC 3339 timestamp", name) from None
    if parsed.tzinfo is None:
        raise _Refusal(400, "invalid_request_error", f"{name}: must carry a time zone", name)
    return int(parsed.timestamp())


def _query(params: dict[str, list[str]], start: int | None, end: int, allowed: Sequence[str],
           limits: dict[str, tuple[int, int]], group_param: str) -> _Query:
    assert start is not None
    width = _first(params, "bucket_width") or "1d"
    if width not in limits:
        raise _Refusal(400, "invalid_request_error",
                       f"bucket_width: must be one of {', '.join(limits)}", "bucket_width")
    if end <= start:
        raise _Refusal(400, "invalid_request_error", "end_time: must be after start_time", "end_time")
    default, most = limits[width]
    limit = _int_param(params, "limit") or default
    if not 1 <= limit <= most:
        raise _Refusal(400, "invalid_request_error", f"limit: must be between 1 and {most} for {width}", "limit")
    group_by: list[str] = []
    # Either spelling, repeated or comma-separated: clients encode arrays in all these ways.
    for value in params.get("group_by", []) + params.get("group_by[]", []):
        for part in value.split(","):
            if part and part not in group_by:
                if part not in allowed:
                    raise _Refusal(400, "invalid_request_error",
                                   f"{group_param}: {part!r} is not one of {', '.join(allowed)}", group_param)
                group_by.append(part)
    fingerprint = hashlib.sha256(json.dumps([start, end, width, limit, sorted(group_by)]).encode()).hexdigest()[:16]
    offset = 0
    token = _first(params, "page")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            offset, bound = int(decoded["o"]), decoded["q"]
        except (ValueError, KeyError, TypeError):
            raise _Refusal(400, "invalid_request_error", "page: is not a cursor this report issued", "page") from None
        if bound != fingerprint:
            raise _Refusal(400, "invalid_request_error", "page: belongs to another query", "page")
    return _Query(start, end, width, limit, group_by, offset, fingerprint)


def _cursor(query: _Query, offset: int) -> str:
    position = {"o": offset, "p": offset // query.limit, "q": query.fingerprint}
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _window(query: _Query) -> tuple[list[tuple[int, int]], bool]:
    every = query.buckets()
    page = every[query.offset: query.offset + query.limit]
    return page, query.offset + query.limit < len(every)


def _page(query: _Query, records: Iterable[Any], result: Any, edges: Callable[[int, int], dict[str, Any]],
          **top: Any) -> dict[str, Any]:
    """One page of a report in either provider's shape: `edges` writes a bucket's start and end as the
    provider does, `top` adds the provider's own fields before the data."""
    buckets, more = _window(query)
    data = [{**edges(b_start, b_end), "results": results}
            for (b_start, b_end), results in zip(buckets, _results(records, query, buckets, result), strict=True)]
    return {**top, "data": data, "has_more": more,
            "next_page": _cursor(query, query.offset + len(buckets)) if more else None}


def _group(records: Iterable[Any], query: _Query, buckets: list[tuple[int, int]],
           fields: Sequence[str]) -> dict[int, dict[tuple[Any, ...], dict[str, Any]]]:
    """Bucket start -> values of `fields` -> summed numeric fields of the records in it."""
    if not buckets:
        return {}
    low, step = buckets[0][0], WIDTHS[query.width]
    lo, hi = max(low, query.start), min(buckets[-1][1], query.end)
    out: dict[int, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
    for record in records:
        ts = _epoch(record.ts)
        if not lo <= ts < hi:
            continue
        numeric = _numeric(type(record))
        key = tuple(getattr(record, f) for f in fields)
        group = out[ts - (ts - low) % step]
        totals = group.get(key)
        if totals is None:
            totals = group[key] = dict.fromkeys(numeric, 0)
        for name in numeric:
            totals[name] += getattr(record, name)
    return out


def _epoch(ts: datetime) -> int:
    """Unix seconds of a ledger timestamp (a naive one is taken as UTC, as the providers report)."""
    return int((ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp())


_NUMERIC: dict[type, tuple[str, ...]] = {}


def _numeric(cls: type) -> tuple[str, ...]:
    """The fields a report sums: counts and amounts."""
    if cls not in _NUMERIC:
        _NUMERIC[cls] = tuple(f.name for f in fields(cls) if f.type in ("int", "Decimal"))
    return _NUMERIC[cls]


def _results(records: Iterable[Any], query: _Query, buckets: list[tuple[int, int]],
             result: Any) -> list[list[dict[str, Any]]]:
    """Per bucket, one result per grouping, in a stable order."""
    fields = list(query.group_by)
    if "description" in fields:
        fields += COST_DETAIL
    grouped = _group(records, query, buckets, fields)
    out = []
    for b_start, _ in buckets:
        rows = grouped.get(b_start, {})
        ordered = sorted(rows.items(), key=lambda kv: json.dumps(kv[0], default=str))
        out.append([result(dict(zip(fields, key, strict=True)), totals) for key, totals in ordered])
    return out


# ---------------------------------------------------------------- result shapes
def _grouped(values: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The grouping fields of a result: a field not grouped by is null."""
    return {name: values.get(name) for name in names}


def _openai_completions(values: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    return {"object": "organization.usage.completions.result", "input_tokens": t["input_tokens"],
            "output_tokens": t["output_tokens"], "input_cached_tokens": t["input_cached_tokens"],
            "input_audio_tokens": t["input_audio_tokens"], "output_audio_tokens": t["output_audio_tokens"],
            "num_model_requests": t["num_model_requests"],
            **_grouped(values, ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier"))}


def _openai_embeddings(values: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    return {"object": "organization.usage.embeddings.result", "input_tokens": t["input_tokens"],
            "num_model_requests": t["num_model_requests"],
            **_grouped(values, ("project_id", "user_id", "api_key_id", "model"))}


def _openai_costs(values: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    return {"object": "organization.costs.result",
            "amount": {"value": Decimal(t["amount_usd"]), "currency": "usd"},
            **_grouped(values, ("line_item", "project_id"))}


def _anthropic_usage(values: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    return {"uncached_input_tokens": t["uncached_input_tokens"],
            "cache_creation": {"ephemeral_1h_input_tokens": t["cache_creation_1h"],
                               "ephemeral_5m_input_tokens": t["cache_creation_5m"]},
            "cache_read_input_tokens": t["cache_read_input_tokens"], "output_tokens": t["output_tokens"],
            "server_tool_use": {"web_search_requests": t["web_search_requests"]},
            **_grouped(values, ("api_key_id", "workspace_id", "model", "service_tier", "context_window"))}


def _anthropic_cost(values: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    # The line's model, cost and token type, tier and context window come with a description grouping.
    return {"currency": "USD", "amount": _plain(Decimal(t["amount_cents"])),
            **_grouped(values, ("workspace_id", "description", *COST_DETAIL))}


COST_DETAIL = ("model", "cost_type", "token_type", "service_tier", "context_window")


# ---------------------------------------------------------------- encoding
def _plain(value: Decimal) -> str:
    return format(value, "f")


_DECIMAL = re.compile(r'"@@dec@@(-?[0-9.]+)@@"')


def _dumps(payload: Any) -> bytes:
    """JSON with Decimals as exact number literals (the client parses them back exactly)."""
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"@@dec@@{_plain(value)}@@"
        raise TypeError(type(value).__name__)
    return _DECIMAL.sub(r"\1", json.dumps(payload, default=default, separators=(",", ":"))).encode()


def _rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_body(refusal: _Refusal, anthropic: bool) -> bytes:
    if anthropic:
        return _dumps({"type": "error", "error": {"type": refusal.kind, "message": refusal.message}})
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(refusal.status)
    return _dumps({"error": {"message": refusal.message, "type": refusal.kind, "param": refusal.param,
                             "code": code}})


def day(ts: datetime) -> datetime:
    """Midnight UTC of ts (a helper for callers building ledgers)."""
    return ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def days_back(now: datetime, n: int) -> datetime:
    return day(now) - timedelta(days=n)
