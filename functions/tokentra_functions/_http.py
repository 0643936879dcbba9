"""uvicorn's httptools protocol, answering oversized request heads with 431 and letting the client read it,
and writing a response's head and body in one write.

httptools (llhttp) is the fastest HTTP/1.1 parser uvicorn offers, about 0.4 ms a request quicker than h11
on this hardware, but it puts no bound on a request head: a client could send megabytes of headers and
they would all be buffered. Here a head past HEAD_LIMIT bytes gets a JSON 431 instead. uvicorn answers
every parse error with 400 and closes the socket at once; with the client still sending its header block,
that close resets the connection and the client sees no answer at all, so the 431 is written, the
connection half-closed and the rest drained for a moment before it is closed.

uvicorn writes a response's status line and headers, then its body, each with a system call of its own: two
TCP segments, two wake-ups of the client for one answer. A loopback write costs 0.1-0.25 ms here (the
kernel delivers to and wakes the reader inside it), on the path of every call. The head is held until the
body's first write, which comes in the same step of the handler's task for every non-streamed answer, and
both go in one write; a head whose body is not ready yet (a stream waiting for its first event) goes out
alone at the event loop's next turn.

    uvicorn tokentra_functions.app:app --http tokentra_functions._http:HttpToolsProtocol
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base

__all__ = ["HEAD_LIMIT", "SPEC", "HttpToolsProtocol"]

SPEC = "tokentra_functions._http:HttpToolsProtocol"
# h11's default bound on a request head, which this server enforced before it moved to httptools.
HEAD_LIMIT = 16 * 1024
DRAIN_SECONDS = 2.0
_BODY = json.dumps({"error": "headers_too_large", "message": "the request's headers are too large"}).encode()
_RESPONSE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
             b"content-length: " + str(len(_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _BODY)


class _HeadTooLarge(Exception):
    """Raised from a parser callback; httptools turns it into a parse error, which lands in send_400_response."""


class HttpToolsProtocol(_Base):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests, the next bytes start a head
        self._head_bytes = 0  # raw bytes received while the current head is incomplete
        self._head_size = 0  # its URL and headers as parsed so far
        self._too_large = False
        self._draining = False

    def data_received(self, data: bytes) -> None:
        if self._draining:  # the rest of a request already answered
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head still incomplete after this many bytes is too large, however the parser has split it.
        if self._in_head and self._head_bytes > HEAD_LIMIT and not self._draining and self.parser is not None:
            self._too_large = True
            self._answer_431()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._grow(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and not isinstance(cycle.transport, _HeadWithBody):
            cycle.transport = _HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _grow(self, size: int) -> None:
        # A head that arrived in one read is whole before data_received can count it: count it as parsed.
        self._head_size += size
        if self._head_size > HEAD_LIMIT:
            self._too_large = True
            raise _HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        self._answer_431()

    def _answer_431(self) -> None:
        if self._draining:
            return
        self._draining = True
        self.transport.write(_RESPONSE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)


class _HeadWithBody:
    """A response cycle's transport: its first write (the head, or a 100 Continue) is held until the next
    write, which it joins, or until the loop's next turn; every later write goes straight through."""

    __slots__ = ("_transport", "_loop", "_held", "_first", "_flush")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
        elif self._first:
            self._first = False
            self._held = data
            self._flush = self._loop.call_soon(self._write_held)
            return
        self._transport.write(data)

    def _write_held(self) -> None:
        self._flush = None
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._write_held()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
