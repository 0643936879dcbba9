"""The app `tokentra serve` runs: every function, with a one-line log of each request.

The log line is method, path, status and milliseconds: never the query string or a header, which may
carry filters or keys. Each uvicorn worker process imports this module, so each logs its own requests.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tokentra_functions.app import app as functions_app

__all__ = ["RequestLog", "app"]

log = logging.getLogger("tokentra.requests")
if not log.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class RequestLog:
    """ASGI middleware: `GET /functions/v1/costs 200 12.3 ms` per HTTP request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, sending)
        finally:
            log.info("%s %s %s %.1f ms", scope["method"], scope["path"], status,
                     (time.perf_counter() - started) * 1000)


app = RequestLog(functions_app)
