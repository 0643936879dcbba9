"""Provider usage objects converted to the ingest token convention.

`input_tokens` counts every input token, cache reads and writes included; `cached_tokens` and
`cache_write_tokens` are the parts read from and written to a prompt cache. `output_tokens` counts every
output token; `reasoning_tokens` is the part spent on reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TOKEN_FIELDS", "merge_delta", "normalize_usage", "usage_dict"]

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens")


def usage_dict(usage: Any) -> dict[str, Any] | None:
    """The provider's usage object as a plain JSON-ready dict, as the provider sent it."""
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        return dict(usage)
    to_dict = getattr(usage, "to_dict", None)
    if callable(to_dict):
        try:
            return to_dict(mode="json", warnings=False)
        except TypeError:  # an older or foreign model without these keywords
            return to_dict()
    model_dump = getattr(usage, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json", exclude_unset=True)
    return dict(vars(usage))


def merge_delta(start: dict[str, Any] | None, delta: dict[str, Any] | None) -> dict[str, Any] | None:
    """Anthropic streams: message_start's usage updated by message_delta's non-null (cumulative) counts."""
    if delta is None:
        return start
    merged = dict(start or {})
    merged.update((key, value) for key, value in delta.items() if value is not None)
    return merged


def normalize_usage(endpoint: str, raw: Mapping[str, Any] | None) -> dict[str, int]:
    """Token counts for one call; zeros when the provider reported nothing."""
    if not raw:
        return dict.fromkeys(TOKEN_FIELDS, 0)
    if endpoint == "chat.completions":
        prompt_details = _mapping(raw.get("prompt_tokens_details"))
        completion_details = _mapping(raw.get("completion_tokens_details"))
        return {
            "input_tokens": _int(raw.get("prompt_tokens")),
            "output_tokens": _int(raw.get("completion_tokens")),
            "cached_tokens": _int(prompt_details.get("cached_tokens")),
            "cache_write_tokens": _int(prompt_details.get("cache_write_tokens")),
            "reasoning_tokens": _int(completion_details.get("reasoning_tokens")),
        }
    if endpoint == "responses":
        input_details = _mapping(raw.get("input_tokens_details"))
        output_details = _mapping(raw.get("output_tokens_details"))
        return {
            "input_tokens": _int(raw.get("input_tokens")),
            "output_tokens": _int(raw.get("output_tokens")),
            "cached_tokens": _int(input_details.get("cached_tokens")),
            "cache_write_tokens": _int(input_details.get("cache_write_tokens")),
            "reasoning_tokens": _int(output_details.get("reasoning_tokens")),
        }
    # Anthropic messages: its input_tokens excludes the cache reads and writes, so add them back.
    cache_read = _int(raw.get("cache_read_input_tokens"))
    cache_write = _int(raw.get("cache_creation_input_tokens"))
    return {
        "input_tokens": _int(raw.get("input_tokens")) + cache_read + cache_write,
        "output_tokens": _int(raw.get("output_tokens")),
        "cached_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": _int(_mapping(raw.get("output_tokens_details")).get("thinking_tokens")),
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
