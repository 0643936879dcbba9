"""A local stand-in for `POST {TOKENTRA_URL}/ingest` that records every request it gets.

It answers as the contract says (accepted / duplicates by request_id / rejected), enforces the
1,000-event and 1 MiB limits with 413, and can be told to fail the next requests or to hold them.
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import tokentra
from tokentra_dev.testing.http_server import LocalHTTPServer

TOKENTRA_KEY = "tt_test_SECRET-tokentra-key-0123456789"
PATH = "/functions/v1/ingest"
FEEDBACK_PATH = "/functions/v1/feedback"
MAX_EVENTS = 1000
MAX_BYTES = 1024 * 1024


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


class IngestReceiver(LocalHTTPServer):
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Received] = []
        self.events: list[dict[str, Any]] = []  # accepted, each request_id once
        self.feedback: list[dict[str, Any]] = []  # every feedback item received
        self._seen: set[str] = set()
        self._script: collections.deque[tuple[int, dict[str, str]]] = collections.deque()
        self._lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.arrived = threading.Event()  # set whenever a request comes in
        super().__init__(_Handler)

    @property
    def url(self) -> str:
        """The functions base URL, as TOKENTRA_URL would hold it."""
        return f"{self.base_url}/functions/v1"

    @property
    def bodies(self) -> list[bytes]:
        return [r.body for r in self.requests]

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next `times` requests with `status` (and headers) instead of accepting them."""
        with self._lock:
            self._script.extend([(status, headers or {})] * times)

    def hold(self) -> None:
        """Keep requests waiting, unanswered, until `release.set()`."""
        self.release.clear()

    def stop(self) -> None:
        self.release.set()  # held requests answer, so the server can shut down
        super().stop()

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        received = Received(headers, body)
        with self._lock:
            self.requests.append(received)
            scripted = self._script.popleft() if self._script else None
        self.arrived.set()
        self.release.wait(10)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            status, extra, payload = 401, {}, {"error": "unauthorized", "message": "bad key"}
        elif scripted is not None:
            status, extra, payload = scripted[0], scripted[1], {"error": "scripted", "message": "try later"}
        else:
            status, extra, payload = self._ingest(received)
        received.status = status
        return status, extra, payload

    def _ingest(self, received: Received) -> tuple[int, dict[str, str], dict[str, Any]]:
        events = json.loads(received.body)["events"]
        if len(events) > MAX_EVENTS or len(received.body) > MAX_BYTES:
            return 413, {}, {"error": "too_large", "message": "split the batch"}
        received.events = events
        accepted = duplicates = 0
        rejected = []
        with self._lock:
            for index, event in enumerate(events):
                if not event.get("request_id") or not event.get("model"):
                    rejected.append({"index": index, "field": "request_id", "message": "required"})
                elif event["request_id"] in self._seen:
                    duplicates += 1
                else:
                    self._seen.add(event["request_id"])
                    self.events.append(event)
                    accepted += 1
        return 200, {}, {"accepted": accepted, "duplicates": duplicates, "rejected": rejected}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == FEEDBACK_PATH:
            items = json.loads(body)["feedback"]
            self.server.owner.feedback.extend(items)  # type: ignore[attr-defined]
            status, extra, payload = 200, {}, {"accepted": len(items), "unmatched": 0, "rejected": []}
        elif self.path != PATH:
            status, extra, payload = 404, {}, {"error": "not_found", "message": self.path}
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = self.server.owner.answer(headers, body)  # type: ignore[attr-defined]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def flushed(receiver: IngestReceiver) -> list[dict[str, Any]]:
    """Flush the SDK and return the events the receiver accepted."""
    assert tokentra.flush(timeout=10), tokentra.stats()
    return receiver.events
