"""uvicorn's h11 protocol, answering oversized headers with 431 and letting the client read it.

uvicorn answers every HTTP parse error with 400 and closes the socket at once; with the client still
sending a large header block, the close resets the connection and the client sees no answer at all.
Here a header block past h11's limit (h11 marks that error 431) gets a JSON 431, and the connection is
half-closed and drained for a moment before it is closed, so the answer arrives.

    uvicorn tokentra_functions.app:app --http tokentra_functions._http:H11Protocol
"""

from __future__ import annotations

import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol as _Base

__all__ = ["SPEC", "H11Protocol"]

SPEC = "tokentra_functions._http:H11Protocol"
DRAIN_SECONDS = 2.0


class _Connection(h11.Connection):
    """Remembers the status h11 suggests for the last protocol error."""

    error_status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error_status = exc.error_status_hint
            raise


class H11Protocol(_Base):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.config.h11_max_incomplete_event_size
        self.conn = _Connection(h11.SERVER, *([limit] if limit is not None else []))
        self._draining = False

    def data_received(self, data: bytes) -> None:
        if self._draining:  # the rest of a request already answered
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if getattr(self.conn, "error_status", 400) != 431:
            super().send_400_response(msg)
            return
        body = json.dumps({"error": "headers_too_large", "message": "the request's headers are too large"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=431, headers=headers, reason=b"Request Header Fields Too Large"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self._draining = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)
