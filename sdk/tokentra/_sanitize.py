"""Events as JSON the ingest endpoint can store, so a tag with a stray NUL never costs a batch.

Ingest refuses, event by event, what Postgres cannot hold: NUL characters, unpaired surrogates, NaN and
Infinity, JSON nested deeper than 16 levels, metadata or raw_usage over 16 KiB, a tag named "tokentra".
Nearly every event has none of these and is serialized once; only one that fails the cheap checks is
cleaned (NUL removed, surrogates replaced, non-finite numbers and over-deep values dropped, long tag
values cut, an oversized raw_usage and the reserved tag left out) and serialized again. Runs on the
sender thread, never on the caller's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["encode_event"]

MAX_JSON_BYTES = 16_384  # metadata and raw_usage, each, as the ingest contract allows
MAX_DEPTH = 16
MAX_TAG_CHARS = 1_000
_ATTRIBUTION = ("feature", "team", "project", "user_id")
_RESERVED = "tokentra"  # metadata key of the SDK's own signals, refused in customers' tags


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=str).encode("utf-8")


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The event as UTF-8 JSON that ingest accepts as it is, cleaned first only when it must be."""
    metadata = event.get("metadata")
    try:
        data = _dumps(event)
    except (ValueError, UnicodeEncodeError, RecursionError):
        return _dumps(_clean_event(event))
    if isinstance(metadata, Mapping) and _RESERVED in metadata:
        return _dumps(_clean_event(event))
    # Counting brackets bounds the nesting from above: only events with many look closer.
    if (b"\\u0000" in data or (len(data) > MAX_JSON_BYTES and _oversized(event))
            or data.count(b"{") + data.count(b"[") > MAX_DEPTH):
        return _dumps(_clean_event(event))
    return data


def _oversized(event: Mapping[str, Any]) -> bool:
    return any(len(_dumps(_clean(event.get(k), 0))) > MAX_JSON_BYTES for k in ("metadata", "raw_usage")
               if event.get(k) is not None)


def _clean_event(event: Mapping[str, Any]) -> dict[str, Any]:
    out = {str(k): _clean(v, 0) for k, v in event.items()}
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata = {k: v[:MAX_TAG_CHARS] if isinstance(v, str) else v for k, v in metadata.items() if k != _RESERVED}
        if len(_dumps(metadata)) > MAX_JSON_BYTES:  # keep the attribution, drop the rest
            metadata = {k: metadata[k] for k in _ATTRIBUTION if k in metadata}
        out["metadata"] = metadata
    raw_usage = out.get("raw_usage")
    if raw_usage is not None and len(_dumps(raw_usage)) > MAX_JSON_BYTES:
        out["raw_usage"] = None
    return out


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return None
        return {_clean_text(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            return None
        return [_clean(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    return _clean_text(str(value))


def _clean_text(text: str) -> str:
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
