"""Quality feedback: a score in [0, 1] for a call, sent after you judged its answer.

    reply = client.chat.completions.create(...)
    request_id = tokentra.last_request_id()      # the id the SDK reported this call under
    ...                                           # later: the user rated the answer, an eval ran
    tokentra.feedback(request_id, 0.9)

TokenTRA compares models on these scores (quality-cost Pareto recommendations).
"""

from __future__ import annotations

import contextvars
import math
from typing import Any

from . import _state
from ._record import request_id_of

__all__ = ["Feedback", "feedback", "last_request_id", "remember"]

# The last call begun in this thread or task; a ContextVar so concurrent tasks never see each other's.
_LAST: contextvars.ContextVar[Any] = contextvars.ContextVar("tokentra_last_call", default=None)


def remember(call: Any) -> None:
    """Hot path: keep a reference to the call just begun (its id is formatted only when asked for)."""
    _LAST.set(call)


def last_request_id() -> str | None:
    """The request_id of the last call this thread or task made through a wrapped client, or None."""
    call = _LAST.get()
    return None if call is None else request_id_of(call)


class Feedback:
    """One queued score; the sender posts it to `{TOKENTRA_URL}/feedback` instead of /ingest."""

    __slots__ = ("request_id", "score")
    target = "feedback"

    def __init__(self, request_id: str, score: float) -> None:
        self.request_id = request_id
        self.score = score

    def to_event(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "score": self.score}


def feedback(request_id: str, score: float) -> None:
    """Queue a quality score in [0, 1] for the call reported as `request_id`; a later score replaces it.

    Raises ValueError for a score outside [0, 1] or an empty request id (a bug in the caller's code,
    better seen at once); otherwise never blocks or raises, like every event the SDK sends.
    """
    if not isinstance(request_id, str) or not request_id.strip():
        raise ValueError("request_id must be a non-empty string (see tokentra.last_request_id())")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or math.isnan(score) or not 0 <= score <= 1:
        raise ValueError(f"score must be a number between 0 and 1, got {score!r}")
    _state.submit(Feedback(request_id, float(score)))
