"""A local HTTP receiver that speaks like Slack, a webhook endpoint or PagerDuty's Events API: it
records every POST and answers what it is told to (200 by default, or a script such as 500, 500, 500
then 200). The demo shows the alerts it delivered; the tests assert on what arrived."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tokentra_core.alerting.webhooks import verify

__all__ = ["LocalReceiver", "Received"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        """True when the Standard Webhooks signature verifies with secret."""
        return verify(secret, self.headers, self.body)


@dataclass
class _Script:
    statuses: list[int] = field(default_factory=list)
    location: str | None = None  # for 3xx answers


class LocalReceiver:
    """`with LocalReceiver() as r:` then point channels at `r.url("/slack")` and read `r.received()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._scripts: dict[str, _Script] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status, location = receiver._answer(self.path)
                with receiver._lock:
                    receiver._received.append(Received(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                reply = b'{"status":"success","message":"Event processed"}' if status == 202 else b"ok"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-receiver", daemon=True)

    def _answer(self, path: str) -> tuple[int, str | None]:
        with self._lock:
            script = self._scripts.get(path)
            if script and script.statuses:
                return script.statuses.pop(0), script.location
        return (202 if path.startswith("/pagerduty") else 200), None

    def script(self, path: str, statuses: list[int], location: str | None = None) -> None:
        """Answer the next requests to path with these statuses (then the default 200/202)."""
        with self._lock:
            self._scripts[path] = _Script(list(statuses), location)

    def url(self, path: str = "/") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def start(self) -> LocalReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
