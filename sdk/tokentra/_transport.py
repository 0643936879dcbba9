"""One ingest request: pack events into bodies within the contract's limits, post, classify the answer."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from .config import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, Config

__all__ = ["BODY_KEYS", "Outcome", "Transport", "encode_body", "pack", "parse_retry_after", "public_url"]

_TAIL = b"]}"
# The endpoints items go to, under {url}/<target>, and the key of the list in each body.
BODY_KEYS = {"ingest": "events", "feedback": "feedback"}
_USER_AGENT = "tokentra-python/0.1.0"


class Outcome:
    """What to do with a batch after one attempt."""

    OK = "ok"
    SPLIT = "split"  # 413: the server wants smaller requests
    UNAUTHORIZED = "unauthorized"  # 401: never retried
    REJECTED = "rejected"  # other 4xx: retrying cannot help
    RETRY = "retry"  # network error, 408, 429, 5xx

    __slots__ = ("kind", "status", "retry_after", "accepted", "duplicates", "rejected", "error")

    def __init__(self, kind: str, status: int | None = None, retry_after: float | None = None,
                 error: str | None = None) -> None:
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.error = error  # why the request never got an answer (a network error), for the log
        self.accepted = 0
        self.duplicates = 0
        self.rejected: list[Any] = []


def _head(target: str) -> bytes:
    return b'{"' + BODY_KEYS[target].encode() + b'":['


def encode_body(parts: Sequence[bytes], target: str = "ingest") -> bytes:
    """Join already-serialized items into one `{"events": [...]}` body (`{"feedback": [...]}` for feedback)."""
    return _head(target) + b",".join(parts) + _TAIL


def pack(parts: Sequence[bytes], max_events: int = MAX_BATCH_EVENTS, max_bytes: int = MAX_BATCH_BYTES,
         target: str = "ingest") -> Iterator[list[bytes]]:
    """Split serialized events, in order, into groups whose bodies respect both limits.

    An event too large to fit any body is yielded alone; the server answers 413 and it is dropped.
    """
    group: list[bytes] = []
    size = len(_head(target)) + len(_TAIL)
    for part in parts:
        extra = len(part) + (1 if group else 0)
        if group and (len(group) >= max_events or size + extra > max_bytes):
            yield group
            group, size = [], len(_head(target)) + len(_TAIL)
            extra = len(part)
        group.append(part)
        size += extra
    if group:
        yield group


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def public_url(url: str) -> str:
    """The URL as logs may show it: without user, password or query (which could carry a secret)."""
    try:
        parts = httpx.URL(url)
        return str(parts.copy_with(userinfo=b"", query=None, fragment=None))
    except Exception:
        return "<unparseable URL>"


class Transport:
    """Posts bodies to the ingest endpoint with one reusable httpx client."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._client: httpx.Client | None = None

    def endpoint(self, target: str = "ingest") -> str:
        """Where items of `target` go, as logs may show it."""
        return public_url(f"{self._config.url}/{target}")

    def post(self, parts: Sequence[bytes], target: str = "ingest") -> Outcome:
        if not self._config.api_key:
            return Outcome(Outcome.UNAUTHORIZED)
        if self._client is None:
            self._client = httpx.Client(timeout=self._config.timeout)
        headers = {
            "Authorization": "Bearer " + self._config.api_key,
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        try:
            response = self._client.post(f"{self._config.url}/{target}", content=encode_body(parts, target),
                                         headers=headers)
        except httpx.HTTPError as exc:
            # The class and httpx's message say why (refused, DNS, timeout); they hold no key.
            reason = str(exc).strip()
            return Outcome(Outcome.RETRY, error=exc.__class__.__name__ + (f": {reason}" if reason else ""))
        return classify_response(response)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def classify_response(response: httpx.Response) -> Outcome:
    """Map an ingest answer onto what the sender should do next."""
    status = response.status_code
    if 200 <= status < 300:
        outcome = Outcome(Outcome.OK, status)
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = {}
        if isinstance(body, dict):
            outcome.accepted = _as_int(body.get("accepted"))
            outcome.duplicates = _as_int(body.get("duplicates"))
            rejected = body.get("rejected")
            outcome.rejected = rejected if isinstance(rejected, list) else []
        return outcome
    if status == 401:
        return Outcome(Outcome.UNAUTHORIZED, status)
    if status == 413:
        return Outcome(Outcome.SPLIT, status)
    if status in (408, 429) or status >= 500:
        return Outcome(Outcome.RETRY, status, parse_retry_after(response.headers.get("retry-after")))
    return Outcome(Outcome.REJECTED, status)


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
