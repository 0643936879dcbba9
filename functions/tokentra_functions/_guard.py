"""The outermost layer of every function: a request id, a bound on header size, and unexpected errors
answered as JSON.

An exception that escapes a handler still gets a JSON 500 carrying the request id, and the connection
stays usable: Starlette's own error middleware re-raises after answering, which makes the server close
a keep-alive connection and fail the client's next request too. The log line names the request id, the
route template and the exception (its class, SQLSTATE and where it was raised), never a parameter
value: exception messages quote values, so they are left out. The access line is ours for the same
reason (the server's own quotes the query string); `tokentra serve` turns the server's off.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_HEADER_BYTES", "RequestGuard"]

log = logging.getLogger("tokentra.functions")
access = logging.getLogger("tokentra.access")
# The total of every header name and value; h11 refuses a header block past 16 KiB on its own, but only
# once it arrives in pieces, so the bound is checked here too.
MAX_HEADER_BYTES = 16 * 1024


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "(unrouted)"


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


async def _send_json(send: Send, status: int, body: dict[str, Any], request_id: str) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        status = 500
        response_started = False

        async def tagged(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = message.get("headers", [])
                # A response that already names its request (the gateway passing a provider's id through,
                # which the official clients read) keeps that one.
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        try:
            if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                status = 431
                await _send_json(send, 431, {"error": "headers_too_large", "message":
                                             f"request headers carry at most {MAX_HEADER_BYTES} bytes",
                                             "request_id": request_id}, request_id)
                return
            await self.app(scope, receive, tagged)
        except Exception as exc:
            sqlstate = getattr(exc, "sqlstate", None)
            log.error("request %s %s %s failed: %s%s at %s", request_id, scope["method"], _route(scope),
                      type(exc).__name__, f" (SQLSTATE {sqlstate})" if sqlstate else "", _where(exc))
            if response_started:
                raise
            status = 500
            await _send_json(send, 500, {"error": "internal_error", "message":
                                         "the request failed unexpectedly; quote the request id when reporting it",
                                         "request_id": request_id}, request_id)
        finally:
            access.info("%s %s %s %d %.1fms", request_id, scope["method"], _route(scope), status,
                        (time.perf_counter() - started) * 1000)
