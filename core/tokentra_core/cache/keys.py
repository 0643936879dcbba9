"""What a request is cached under: its scope (model, answer-changing parameters, system prompt, earlier
turns) and its prompt (the last user message), as hashes, plus the lexical guard's features."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokentra_core.cache.guard import GuardFeatures, guard_features, normalize_prompt

__all__ = ["CacheKey", "NOT_ANSWER_CHANGING", "cache_key"]

# Request parameters that never change the answer; every other parameter (temperature, top_p, seed,
# tools, tool_choice, response_format, max_tokens, reasoning effort, and any new one) scopes the entry.
NOT_ANSWER_CHANGING = frozenset({
    "model", "messages", "input", "system", "instructions", "stream", "stream_options", "user", "metadata",
    "store", "service_tier", "timeout", "extra_headers", "extra_query", "prompt_cache_key", "safety_identifier",
    "tokentra_tags", "background",
})
_SYSTEM_ROLES = ("system", "developer")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _text(content: Any) -> str | None:
    """The text of a message's content; None when it holds anything but text (images, files, audio)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
                continue
            if not isinstance(part, Mapping):
                return None
            kind = part.get("type", "text")
            if kind not in ("text", "input_text", "output_text"):
                return None
            text = part.get("text")
            if not isinstance(text, str):
                return None
            parts.append(text)
        return "\n".join(parts)
    return None


@dataclass(frozen=True)
class CacheKey:
    prompt: str  # the last user message: embedded, never stored unless the organization opted in
    prompt_hash: str
    system_prompt_hash: str
    context_hash: str
    params_hash: str
    guard: GuardFeatures


def cache_key(messages: Any, system: Any = None, params: Mapping[str, Any] | None = None) -> CacheKey | None:
    """The key of a chat request (`messages` of OpenAI chat or Anthropic, or the Responses API `input`),
    or None when it cannot be cached: no user message, non-text parts, or a tool call in the conversation."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)) or not messages:
        return None
    systems: list[str] = []
    turns: list[str] = []
    if system is not None:
        text = _text(system)
        if text is None:
            return None
        systems.append(text)
    for message in messages:
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            return None
        if message.get("tool_calls") or message.get("function_call"):
            return None
        text = _text(message.get("content"))
        if text is None:
            return None
        role = message["role"]
        if role in _SYSTEM_ROLES:
            systems.append(text)
        else:
            turns.append(f"{role}: {normalize_prompt(text)}")
    last = messages[-1]
    if last.get("role") != "user":
        return None
    prompt = _text(last.get("content")) or ""
    if not prompt.strip():
        return None
    system_text = normalize_prompt("\n".join(systems))
    kept = {k: v for k, v in (params or {}).items() if k not in NOT_ANSWER_CHANGING and v is not None}
    return CacheKey(
        prompt=prompt,
        prompt_hash=_sha256(normalize_prompt(prompt)),
        system_prompt_hash=_sha256(system_text) if system_text else "",
        context_hash=_sha256("\n".join(turns[:-1])) if len(turns) > 1 else "",
        params_hash=_sha256(json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)),
        guard=guard_features(prompt),
    )
