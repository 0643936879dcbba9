"""Report a call the SDK did not wrap (another client, a batch job, a replay of old logs)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from . import _state
from .tags import current_tags

__all__ = ["record"]


def record(event: Mapping[str, Any]) -> None:
    """Queue one usage event in the ingest API's shape; never blocks or raises into the caller.

    A missing `request_id` gets a fresh one (fixed from here on, so retries stay safe), a missing
    `timestamp` is now, and the tags in force fill metadata keys the event does not set.
    """
    item = dict(event)
    item.setdefault("request_id", str(uuid.uuid4()))
    item.setdefault("timestamp", datetime.now(timezone.utc).isoformat())
    tags = current_tags()
    if tags:
        item["metadata"] = {**tags, **(item.get("metadata") or {})}
    _state.submit(item)
