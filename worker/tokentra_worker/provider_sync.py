"""Pull the providers' own usage and cost reports through each connection's admin key.

For every enabled provider connection with an admin key, each report endpoint is synced over a window:
the last `reconciliation_backfill_days` on its first sync, afterwards from the last synced day (and at
least `reconciliation_resync_days` back, since providers revise recent buckets). A window is read page by
page; each page is stored whole in one transaction (raw body, normalized rows upserted on their natural
key, the cursor), so a run that dies mid-pagination is resumed at the page it had not stored, and a
window's last page removes what the provider no longer reports. Rate limits (429, honouring retry-after)
and server errors are retried with exponential backoff; any other refusal is recorded on the endpoint's
sync state and the job goes on with the other connections. The admin key is never logged or stored in
clear: provider messages are redacted before they are recorded.
"""

from __future__ import annotations

import json
import logging
import random
import re
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from functools import cache
from threading import Event
from typing import Any
from uuid import UUID

import httpx
from psycopg.types.json import Jsonb

from tokentra_core.db import Conn, connect, one
from tokentra_core.secrets import unseal_provider_secret
from tokentra_core.settings import Settings, get_settings

log = logging.getLogger("tokentra.worker.provider_sync")

__all__ = ["ENDPOINTS", "ReportError", "normalize_page", "openai_line_item", "plan_window", "run_provider_sync"]

PUBLIC_ENDPOINTS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Endpoint:
    provider: str
    path: str  # after /v1/, as recorded in the sync state
    kind: str  # usage | cost
    group_by: tuple[str, ...]
    max_buckets: dict[str, int]  # the provider's page limit per bucket width
    daily_only: bool = False  # the cost reports have daily buckets only


_USAGE_MAX = {"1m": 1440, "1h": 168, "1d": 31}
ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "openai": (
        Endpoint("openai", "organization/usage/completions", "usage",
                 ("model", "project_id", "api_key_id", "batch", "service_tier"), _USAGE_MAX),
        Endpoint("openai", "organization/usage/embeddings", "usage", ("model", "project_id", "api_key_id"),
                 _USAGE_MAX),
        Endpoint("openai", "organization/costs", "cost", ("line_item", "project_id"), {"1d": 180}, daily_only=True),
    ),
    "anthropic": (
        Endpoint("anthropic", "organizations/usage_report/messages", "usage",
                 ("model", "api_key_id", "workspace_id", "service_tier", "context_window"), _USAGE_MAX),
        Endpoint("anthropic", "organizations/cost_report", "cost", ("workspace_id", "description"), {"1d": 31},
                 daily_only=True),
    ),
}


class ReportError(Exception):
    """A report request that failed for good; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def credentials(self) -> bool:
        """The key itself was refused: no other endpoint of the connection will do better."""
        return self.status in (401, 403)


class Stopped(Exception):
    """The worker is stopping (SIGTERM) while a request waited to be retried."""


# ---------------------------------------------------------------- the job
def run_provider_sync(ctx: Any, now: datetime | None = None, orgs: list[str] | None = None) -> str:
    """Sync every connection with an admin key (of the given organizations only, if any); a one-line
    summary. `ctx` is the worker's JobContext (or a bare database URL)."""
    dsn = ctx if isinstance(ctx, str) else ctx.dsn
    settings: Settings = getattr(ctx, "settings", None) or get_settings()
    stop: Event = getattr(ctx, "stop", None) or Event()
    now = now or datetime.now(UTC)
    with connect(dsn) as conn:
        connections = [r for r in conn.execute("select * from private.provider_admin_connections()").fetchall()
                       if orgs is None or str(r["org_id"]) in orgs]
        pruned = one(conn.execute("select private.prune_provider_report_pages(make_interval(days => %s)) as n",
                                  (settings.reconciliation_raw_page_days,)))["n"]
        conn.commit()
    totals = {"connections": len(connections), "endpoints": 0, "pages": 0, "failed": 0}
    # Connections are independent (their own key, rate limits and cursors): a few at once, so one slow
    # provider account does not hold up every other organization's sync.
    with ThreadPoolExecutor(max_workers=settings.reconciliation_concurrency,
                            thread_name_prefix="provider-sync") as pool:
        for pages, done, failed in pool.map(lambda row: _isolated(dsn, row, settings, now, stop), connections):
            totals["pages"] += pages
            totals["endpoints"] += done
            totals["failed"] += failed
    return (f"{totals['connections']} connection(s), {totals['endpoints']} endpoint window(s) synced, "
            f"{totals['pages']} page(s), {totals['failed']} failed, {pruned} raw page(s) pruned")


def _isolated(dsn: str, row: dict[str, Any], settings: Settings, now: datetime,
              stop: Event) -> tuple[int, int, int]:
    """_sync_connection, with anything unexpected (a database error, a bug) kept to this connection."""
    if stop.is_set():
        return 0, 0, 0  # SIGTERM: the cursors are saved; the next run resumes
    try:
        return _sync_connection(dsn, row, settings, now, stop)
    except Exception as exc:
        endpoints = ENDPOINTS.get(row["provider"], ())
        # The key is not at hand here, but a database error quotes the page it choked on: anything shaped
        # like a provider key goes before the message is cut (cutting first could leave a key's prefix).
        message = f"sync failed: {type(exc).__name__}: {redact(str(exc), '')[:300]}"
        log.warning("provider sync: connection %s: %s", row["connection_id"], message)
        try:
            with connect(dsn) as conn:
                for endpoint in endpoints:
                    _record_error(conn, row["connection_id"], endpoint.path, message)
        except Exception as record_exc:  # the database itself is gone: the next run tries again
            log.warning("provider sync: could not record the failure: %s", type(record_exc).__name__)
        return 0, 0, len(endpoints)


def _sync_connection(dsn: str, row: dict[str, Any], settings: Settings, now: datetime,
                     stop: Event) -> tuple[int, int, int]:
    """(pages stored, endpoint windows completed, endpoints failed) for one connection, over one database
    connection (each page its own transaction)."""
    connection_id: UUID = row["connection_id"]
    endpoints = ENDPOINTS.get(row["provider"], ())
    with connect(dsn) as conn:
        try:
            key = _admin_key(conn, row)
        except Exception as exc:  # a key that does not open fails this connection only
            conn.rollback()
            message = f"the admin key could not be read: {type(exc).__name__}"
            for endpoint in endpoints:
                _record_error(conn, connection_id, endpoint.path, message)
            log.warning("provider sync: connection %s: %s", connection_id, message)
            return 0, 0, len(endpoints)
        base_url = (row["base_url"] or PUBLIC_ENDPOINTS[row["provider"]]).rstrip("/")
        headers = ({"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION} if row["provider"] == "anthropic"
                   else {"Authorization": f"Bearer {key}"})
        fetcher = _Fetcher(base_url, row["provider"], headers, key, settings, stop)
        pages = done = failed = 0
        try:
            for index, endpoint in enumerate(endpoints):
                if stop.is_set():
                    break
                try:
                    stored, completed = _sync_endpoint(conn, connection_id, endpoint, fetcher, settings, now, stop)
                    pages += stored
                    done += completed
                except Stopped:
                    break
                except ReportError as exc:
                    conn.rollback()
                    failed += 1
                    message = f"{endpoint.provider} {endpoint.path}: {exc}"
                    _record_error(conn, connection_id, endpoint.path, message)
                    log.warning("provider sync: connection %s: %s", connection_id, message)
                    # A refused key, or no answer at all, would be the same for the other endpoints.
                    if exc.credentials or exc.status is None:
                        for other in endpoints[index + 1:]:
                            _record_error(conn, connection_id, other.path, f"{other.provider} {other.path}: "
                                          f"not tried ({endpoint.path} failed: {exc})")
                            failed += 1
                        break
        finally:
            fetcher.close()
    return pages, done, failed


def _admin_key(conn: Conn, row: dict[str, Any]) -> str:
    if row["vault_secret_id"]:
        return str(one(conn.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                                    (row["vault_secret_id"],)))["decrypted_secret"])
    return unseal_provider_secret(row["org_id"], bytes(row["ciphertext"]), bytes(row["wrapped_key"]))


def _record_error(conn: Conn, connection_id: UUID, path: str, message: str) -> None:
    conn.execute("select private.record_provider_sync_error(%s, %s, %s)", (connection_id, path, message))
    conn.commit()


# ---------------------------------------------------------------- one endpoint's window
def plan_window(synced_through: datetime | None, now: datetime, settings: Settings) -> tuple[datetime, datetime]:
    """[start, end): whole UTC days from the backfill horizon (first sync) or from the last synced day,
    at least resync_days back, up to now."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if synced_through is None:
        start = today - timedelta(days=settings.reconciliation_backfill_days)
    else:
        last = synced_through.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = min(last, today - timedelta(days=settings.reconciliation_resync_days))
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    if end <= start:
        end = start + timedelta(minutes=1)
    return start, end


def _sync_endpoint(conn: Conn, connection_id: UUID, endpoint: Endpoint, fetcher: _Fetcher, settings: Settings,
                   now: datetime, stop: Event) -> tuple[int, int]:
    """(pages stored, 1 if the window completed else 0)."""
    width = "1d" if endpoint.daily_only else settings.reconciliation_bucket_width
    state = conn.execute("select synced_through from private.provider_sync_state "
                         "where connection_id = %s and endpoint = %s", (connection_id, endpoint.path)).fetchone()
    start, end = plan_window(state["synced_through"] if state else None, now, settings)
    window = one(conn.execute("select * from private.begin_provider_sync_window(%s, %s, %s, %s)",
                              (connection_id, endpoint.path, start, end)))
    conn.commit()
    params = _params(endpoint, window["window_start"], window["window_end"], width, settings)
    cursor: str | None = window["next_page"]
    stored = 0
    while not stop.is_set():
        try:
            body, raw = fetcher.get(endpoint, params, cursor)
        except ReportError as exc:
            # A cursor saved by an earlier run that the provider no longer takes (expired, or the
            # query changed with the settings): read the window again from its first page; its rows
            # are upserted under the same sync id, so nothing is counted twice.
            if cursor is None or stored or exc.status not in (400, 404, 410, 422):
                raise
            log.warning("provider sync: %s %s: the saved cursor was refused; restarting the window",
                        endpoint.provider, endpoint.path)
            cursor = None
            continue
        usage, cost = normalize_page(endpoint, body)
        next_page = body.get("next_page") or None
        if body.get("has_more") and not next_page:
            # Completing the window here would drop the rows of the buckets not yet read.
            raise ReportError("has_more without a next_page: the report cannot be followed")
        completed = one(conn.execute(
            "select private.store_provider_report_page(%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s) as done",
            (connection_id, endpoint.path, window["sync_id"], Jsonb(params), cursor, raw, next_page,
             bool(body.get("has_more")), width, Jsonb(usage), Jsonb(cost))))["done"]
        conn.commit()
        stored += 1
        if completed:
            return stored, 1
        cursor = next_page
    return stored, 0


def _params(endpoint: Endpoint, start: datetime, end: datetime, width: str, settings: Settings) -> dict[str, Any]:
    limit = endpoint.max_buckets[width]
    if settings.reconciliation_page_buckets is not None:
        limit = min(limit, settings.reconciliation_page_buckets)
    if endpoint.provider == "openai":
        return {"start_time": int(start.timestamp()), "end_time": int(end.timestamp()), "bucket_width": width,
                "limit": limit, "group_by": list(endpoint.group_by)}
    return {"starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "bucket_width": width, "limit": limit,
            "group_by[]": list(endpoint.group_by)}


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- HTTP with retries
@cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every connection's client: loading the CA bundle costs a sixth of a second of
    CPU each time, which dominated a run over many connections."""
    return httpx.create_ssl_context()


class _Fetcher:
    def __init__(self, base_url: str, provider: str, headers: dict[str, str], key: str, settings: Settings,
                 stop: Event) -> None:
        self.base_url, self.provider, self.key, self.settings, self.stop = base_url, provider, key, settings, stop
        self.client = httpx.Client(headers={**headers, "user-agent": "tokentra-reconciliation"},
                                   timeout=settings.reconciliation_timeout_seconds, verify=_tls())

    def close(self) -> None:
        self.client.close()

    def get(self, endpoint: Endpoint, params: dict[str, Any], cursor: str | None) -> tuple[dict[str, Any], str]:
        """The page as parsed JSON (numbers exact) and as text."""
        url = f"{self.base_url}/{endpoint.path}" if self.provider == "openai" else f"{self.base_url}/v1/{endpoint.path}"
        query = {**params, **({"page": cursor} if cursor else {})}
        settings = self.settings
        last = ReportError("not attempted")
        for attempt in range(settings.reconciliation_max_attempts):
            wait = min(settings.reconciliation_retry_max_seconds,
                       settings.reconciliation_retry_base_seconds * 2 ** attempt) * (0.5 + random.random() / 2)  # noqa: S311 - jitter
            try:
                response = self.client.get(url, params=query)
            except httpx.TransportError as exc:
                last = ReportError(f"no answer ({type(exc).__name__})")
            else:
                if response.status_code == 200:
                    return _parse_page(response.text)
                last = ReportError(self._describe(response), response.status_code)
                if response.status_code == 429:
                    wait = retry_after_seconds(response.headers.get("retry-after"), wait, settings)
                elif response.status_code < 500:
                    raise last
            if attempt + 1 < settings.reconciliation_max_attempts and self.stop.wait(wait):
                raise Stopped  # the cursor is saved; the next run resumes
        raise ReportError(f"{last} (after {settings.reconciliation_max_attempts} attempts)", last.status)

    def _describe(self, response: httpx.Response) -> str:
        """HTTP status and the provider's own message, with anything key-like removed."""
        detail = ""
        try:
            payload = response.json()
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                detail = f"{error.get('type') or ''}: {error.get('message') or ''}".strip(": ")
            elif isinstance(error, str):
                detail = error
        except ValueError:
            detail = response.text[:200]
        return f"HTTP {response.status_code}" + (f" {redact(detail, self.key)}" if detail else "")


def redact(text: str, key: str) -> str:
    """Remove the key and anything shaped like a provider key from a provider's message."""
    text = text.replace(key, "[redacted]") if key else text
    return re.sub(r"sk-[A-Za-z0-9_\-*.]{4,}", "sk-[redacted]", text)


def retry_after_seconds(value: str | None, fallback: float, settings: Settings) -> float:
    """Seconds to wait for a 429: retry-after as seconds or an HTTP date, capped."""
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = fallback
        return max(0.0, min(seconds, settings.reconciliation_retry_max_seconds))
    return fallback


def _parse_page(text: str) -> tuple[dict[str, Any], str]:
    try:
        body = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ReportError(f"the page is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ReportError("the page is not a JSON object")
    return body, text


# ---------------------------------------------------------------- normalization
def normalize_page(endpoint: Endpoint, body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    usage: list[dict[str, Any]] = []
    cost: list[dict[str, Any]] = []
    if not isinstance(body.get("data"), list):
        raise ReportError("the page has no data array")
    for bucket in body["data"]:
        if not isinstance(bucket, dict):
            raise ReportError("a bucket is not an object")
        start = _instant(bucket.get("start_time", bucket.get("starting_at")), "start_time")
        end = _instant(bucket.get("end_time", bucket.get("ending_at")), "end_time")
        for result in bucket.get("results") or []:
            if not isinstance(result, dict):
                raise ReportError("a result is not an object")
            shape = _SHAPES[(endpoint.provider, endpoint.kind)]
            row = shape(result)
            row["bucket_start"], row["bucket_end"] = start, end
            (usage if endpoint.kind == "usage" else cost).append(row)
    return usage, cost


def _instant(value: Any, name: str) -> str:
    """A bucket edge as ISO text: Unix seconds (OpenAI) or RFC 3339 (Anthropic), either accepted."""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value), UTC).isoformat()
    if isinstance(value, str):
        try:
            if value.isdigit():
                return datetime.fromtimestamp(int(value), UTC).isoformat()
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).isoformat()
        except ValueError:
            pass
    raise ReportError(f"a bucket's {name} is not a time: {value!r}")


def _int(result: dict[str, Any], *names: str) -> int:
    """The first of names present, as a count (0 when none is)."""
    for name in names:
        value: Any = result
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                raise ReportError(f"{name} is not a count: {value!r}") from None
    return 0


def _maybe_int(result: dict[str, Any], *names: str) -> int | None:
    present = any(_present(result, n) for n in names)
    return _int(result, *names) if present else None


def _present(result: dict[str, Any], name: str) -> bool:
    value: Any = result
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value is not None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ReportError(f"batch is not a boolean: {value!r}")


def _openai_usage(r: dict[str, Any]) -> dict[str, Any]:
    # OpenAI's input_tokens counts everything that went in: cached reads (and cache writes, where the
    # report has them) are parts of it.
    total = _int(r, "input_tokens")
    cached = _int(r, "input_cached_tokens", "input_tokens_details.cached_tokens")
    writes = _int(r, "input_cache_write_tokens", "input_cache_creation_tokens")
    return {"model": _text(r.get("model")), "project_id": _text(r.get("project_id")),
            "api_key_id": _text(r.get("api_key_id")), "service_tier": _text(r.get("service_tier")),
            "batch": _bool(r.get("batch")), "context_window": None,
            "input_tokens": max(0, total - cached - writes), "cached_input_tokens": cached,
            "cache_write_tokens": writes, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
            "output_tokens": _int(r, "output_tokens"),
            "reasoning_tokens": _maybe_int(r, "output_reasoning_tokens", "reasoning_tokens"),
            "input_audio_tokens": _int(r, "input_audio_tokens"), "output_audio_tokens": _int(r, "output_audio_tokens"),
            "requests": _maybe_int(r, "num_model_requests"), "web_search_requests": 0}


def _anthropic_usage(r: dict[str, Any]) -> dict[str, Any]:
    five = _int(r, "cache_creation.ephemeral_5m_input_tokens")
    hour = _int(r, "cache_creation.ephemeral_1h_input_tokens")
    # An older or flattened shape reports cache writes as one figure, its TTL unknown.
    flat = _int(r, "cache_creation_input_tokens")
    return {"model": _text(r.get("model")), "project_id": _text(r.get("workspace_id")),
            "api_key_id": _text(r.get("api_key_id")), "service_tier": _text(r.get("service_tier")),
            "batch": None, "context_window": _text(r.get("context_window")),
            "input_tokens": _int(r, "uncached_input_tokens", "input_tokens"),
            "cached_input_tokens": _int(r, "cache_read_input_tokens"),
            "cache_write_tokens": max(flat, five + hour), "cache_write_5m_tokens": five, "cache_write_1h_tokens": hour,
            "output_tokens": _int(r, "output_tokens"), "reasoning_tokens": None,
            "input_audio_tokens": 0, "output_audio_tokens": 0,
            "requests": _maybe_int(r, "num_model_requests", "requests"),
            "web_search_requests": _int(r, "server_tool_use.web_search_requests", "web_search_requests")}


def _amount(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ReportError(f"{name} is not a number: {value!r}") from None
    if not amount.is_finite():
        raise ReportError(f"{name} is not a finite number: {value!r}")
    return amount


# OpenAI's token line items read "<model>, <kind>" ("gpt-4o-2024-08-06, cached input").
_LINE_ITEM = re.compile(r"^(?P<model>[^,]+?),\s*(?P<kind>[^,]+)$")


def openai_line_item(line_item: str | None) -> tuple[str | None, str, str | None]:
    """(model, cost_type, token_type) of an OpenAI cost line item."""
    if not line_item:
        return None, "other", None
    lowered = line_item.lower()
    if "web search" in lowered or "web_search" in lowered:
        return None, "web_search", None
    if "code interpreter" in lowered or "code execution" in lowered or "container" in lowered:
        return None, "code_execution", None
    match = _LINE_ITEM.match(line_item.strip())
    if match:
        return match["model"].strip(), "tokens", match["kind"].strip()
    return None, "other", None


def _openai_cost(r: dict[str, Any]) -> dict[str, Any]:
    amount = r.get("amount")
    if isinstance(amount, dict):
        value, currency = amount.get("value"), amount.get("currency") or "usd"
    else:  # a bare number or decimal string
        value, currency = amount, r.get("currency") or "usd"
    line_item = _text(r.get("line_item"))
    model, cost_type, token_type = openai_line_item(line_item)
    return {"line_item": line_item, "project_id": _text(r.get("project_id")), "model": model,
            "cost_type": cost_type, "token_type": token_type, "service_tier": None, "context_window": None,
            "currency": str(currency).lower(), "amount": str(_amount(value, "amount.value"))}


_COST_TYPES = ("tokens", "web_search", "code_execution")


def _anthropic_cost(r: dict[str, Any]) -> dict[str, Any]:
    # Amounts are decimal strings in the currency's lowest unit (cents).
    cents = _amount(r.get("amount"), "amount")
    model = _text(r.get("model"))
    cost_type = _text(r.get("cost_type"))
    if cost_type not in _COST_TYPES:
        cost_type = "tokens" if cost_type is None and model else "other"
    return {"line_item": _text(r.get("description")), "project_id": _text(r.get("workspace_id")), "model": model,
            "cost_type": cost_type, "token_type": _text(r.get("token_type")),
            "service_tier": _text(r.get("service_tier")), "context_window": _text(r.get("context_window")),
            "currency": str(r.get("currency") or "usd").lower(), "amount": str(cents / 100)}


_SHAPES: dict[tuple[str, str], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("openai", "usage"): _openai_usage,
    ("openai", "cost"): _openai_cost,
    ("anthropic", "usage"): _anthropic_usage,
    ("anthropic", "cost"): _anthropic_cost,
}
