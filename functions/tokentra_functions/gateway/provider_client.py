"""The gateway's HTTP/1.1 client for provider calls: asyncio connections whose answers httptools parses,
kept alive in one pool per server process.

Why not aiohttp, which this replaced: every gateway call pays its client's per-request work (its request
and response objects, header multidicts, timers, cookie and trace hooks, a stream reader per answer). On
a 2-core machine that was most of the gateway's added latency, and its tail: an empty FastAPI pass-through
on aiohttp added 3-5 ms at p99, one on this client a fraction of that. The gateway needs little of what
aiohttp offers: one POST or GET at a time per connection, a body it already holds, an answer read whole
or passed on as it comes. What it does need is here: keep-alive, TLS with the system's certificates
(asyncio's ssl), chunked and read-until-close answers (httptools), connect and read timeouts, a bound on
open connections, and gzip or deflate answers decoded (the gateway asks for identity, a provider may
answer compressed anyway).

Not done, on purpose: redirects (a provider's key must not follow one), proxies from the environment (a
provider's key must not travel through a proxy configured for something else), cookies (one client
serves every organization), and retrying a POST on a connection the provider closed as it was reused
(a duplicated call costs money; the caller's fallbacks decide).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

__all__ = ["ProviderClient", "ProviderResponse", "UpstreamError"]

# How long an idle kept-alive connection is reused; a provider that closes it sooner is noticed when it does.
IDLE_SECONDS = 15.0
_NO_BODY = {204, 304}
_DECODED = ("gzip", "x-gzip", "deflate")


class UpstreamError(Exception):
    """The provider could not be reached, or its connection failed or broke the protocol mid-answer."""


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port: the pool's key
    host_header: bytes
    path: str  # the base URL's path and query


class _Connection(asyncio.Protocol):
    """One kept-alive connection: a request written in one piece, its answer parsed as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: tuple[str, str, int]) -> None:
        self.loop, self.origin = loop, origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.head: asyncio.Future[None] = self.loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.complete = False
        self.until_close = False  # neither a length nor chunks: the answer ends when the connection does
        self.keep_alive = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the provider's answer is not valid HTTP: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        if self.until_close and not self.complete:
            self.complete = True
            self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.until_close and not self.complete and self.error is None:
            self.complete = True
            self._wake()
        elif not self.complete:
            self._fail(UpstreamError("the provider closed the connection" + (f": {exc}" if exc else "")))

    # ------------------------------------------------------------ httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer: the real one follows
            self.headers = []
            return
        self.keep_alive = self.parser.should_keep_alive()
        names = {name for name, _ in self.headers}
        self.until_close = (self.status not in _NO_BODY and "content-length" not in names
                            and "transfer-encoding" not in names)
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            return
        self.complete = True
        self._wake()

    # ------------------------------------------------------------ waiting
    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved: a request already abandoned does not log it
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    async def wait(self, future: asyncio.Future[None], timeout: float) -> None:
        """Wait for `future`, failing with TimeoutError when nothing arrives for `timeout` seconds."""
        timer = self.loop.call_later(timeout, _expire, future)
        try:
            await future
        finally:
            timer.cancel()

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while True:
            if self.chunks:
                return self.chunks.popleft()
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self.waiter = self.loop.create_future()
            await self.wait(self.waiter, timeout)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _encoding(headers: list[tuple[str, str]]) -> str:
    return next((value.strip().lower() for name, value in headers if name == "content-encoding"), "")


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class ProviderResponse:
    """An answer whose head has arrived; its body is read with read() or iter_chunks(), then release()."""

    __slots__ = ("_client", "_connection", "_decoder", "_released", "headers", "status")

    def __init__(self, client: ProviderClient, connection: _Connection, compressed: bool) -> None:
        self._client, self._connection = client, connection
        self.status = connection.status
        self.headers = connection.headers  # (lower-case name, value), in the provider's order
        self._released = False
        # gzip or zlib, told apart by their header
        self._decoder: Any = zlib.decompressobj(zlib.MAX_WBITS | 32) if compressed else None

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.iter_chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        connection, timeout = self._connection, self._client.read_timeout
        while (chunk := await connection.next_chunk(timeout)) is not None:
            if self._decoder is not None:
                chunk = self._decoder.decompress(chunk)
            if chunk:
                yield chunk
        if self._decoder is not None and (rest := self._decoder.flush()):
            yield rest

    def release(self) -> None:
        """Back to the pool when the answer was read to its end on a kept-alive connection, closed otherwise."""
        if not self._released:
            self._released = True
            self._client._give_back(self._connection)

    async def __aenter__(self) -> ProviderResponse:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()


class ProviderClient:
    """Every upstream call of one server process: at most `max_connections` open at once, idle ones reused."""

    def __init__(self, *, max_connections: int, connect_timeout: float, read_timeout: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._ssl = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._open: set[_Connection] = set()

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes = b"") -> ProviderResponse:
        """Send one request; return once the answer's head is in. Raises UpstreamError or TimeoutError."""
        target = self._target(url)
        head = self._head(method, target, headers, body)
        await self._slots.acquire()
        connection: _Connection | None = None
        try:
            connection = self._reuse(target.origin) or await self._connect(target.origin)
            connection._reset()
            assert connection.transport is not None  # noqa: S101 - set by connection_made before _connect returns
            connection.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                connection.transport.write(body)
            await connection.wait(connection.head, self.read_timeout)
            encoding = _encoding(connection.headers)
            if encoding not in _DECODED and encoding not in ("", "identity"):
                raise UpstreamError(f"the provider answered with content-encoding {encoding}, which is not decoded")
            return ProviderResponse(self, connection, encoding in _DECODED)
        except BaseException:
            if connection is not None:
                connection.close()
                self._open.discard(connection)
            self._slots.release()
            raise

    # ------------------------------------------------------------ inside
    def _target(self, url: str) -> _Target:
        """The URL's origin and path, parsed once per distinct URL (a few per organization)."""
        prefix, _, query = url.partition("?")
        target = self._targets.get(prefix)
        if target is None:
            parts = urlsplit(prefix)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
            default = 443 if parts.scheme == "https" else 80
            port = parts.port or default
            host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            target = _Target((parts.scheme, parts.hostname, port),
                             (host if port == default else f"{host}:{port}").encode("idna"), parts.path or "/")
            if len(self._targets) > 10_000:
                self._targets.clear()
            self._targets[prefix] = target
        if query:
            return _Target(target.origin, target.host_header, f"{target.path}?{query}")
        return target

    @staticmethod
    def _head(method: str, target: _Target, headers: dict[str, str], body: bytes) -> bytes:
        lines = [f"{method} {target.path} HTTP/1.1\r\n".encode("latin-1"), b"host: ", target.host_header, b"\r\n"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise UpstreamError(f"header {name!r} has a character HTTP does not allow")
            lines.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        if body or method not in ("GET", "HEAD"):
            lines.append(b"content-length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        return b"".join(lines)

    def _reuse(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
            self._open.discard(connection)
        return None

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        connection = _Connection(loop, origin)
        context = None
        if scheme == "https":
            context = self._ssl or _default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(lambda: connection, host, port, ssl=context,
                                             server_hostname=host if context else None)
        except TimeoutError:  # an OSError too, but it is the caller's timeout, not an unreachable provider
            raise
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"could not connect to {host}:{port}: {exc}") from exc
        self._open.add(connection)
        return connection

    def _give_back(self, connection: _Connection) -> None:
        self._slots.release()
        if connection.complete and connection.keep_alive and not connection.closed and connection.error is None:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
            return
        connection.close()
        self._open.discard(connection)

    async def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports' close callbacks run


_context: ssl.SSLContext | None = None


def _default_context() -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE and SSL_CERT_DIR honoured), made once: loading it takes ms."""
    global _context
    if _context is None:
        _context = ssl.create_default_context()
    return _context
