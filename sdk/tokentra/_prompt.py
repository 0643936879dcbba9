"""Prompt text extraction and hashing. The text is only ever hashed or classified, never sent."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

__all__ = ["PromptTexts", "extract_texts", "hash_text", "normalize"]

_SYSTEM_ROLES = ("system", "developer")


def normalize(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def hash_text(text: str | None) -> str | None:
    """sha256 hex digest of the normalized text, or None when nothing is left after normalizing."""
    if not text:
        return None
    normalized = normalize(text)
    if not normalized:
        return None
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


class PromptTexts:
    """The conversation (each message as `role: text`), the system prompt and the last user message;
    `prefix` is everything before the last user message (the system prompt first), or "" when no other
    message precedes it: the part of the prompt a provider's prompt cache could serve to repeats."""

    __slots__ = ("conversation", "system", "last_user", "prefix")

    def __init__(self, conversation: str, system: str, last_user: str, prefix: str = "") -> None:
        self.conversation = conversation
        self.system = system
        self.last_user = last_user
        self.prefix = prefix


def extract_texts(endpoint: str, messages: Any, system: Any) -> PromptTexts:
    """Pull the text out of one request's parameters.

    `messages` is `messages` (chat, Anthropic) or `input` (Responses); `system` is Anthropic's `system`
    or the Responses API's `instructions`. Non-text parts (images, files) contribute nothing.
    """
    lines: list[str] = []
    systems: list[str] = []
    last_user = ""
    before_last_user = 0  # how many conversation lines precede the last user message
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    for message in messages or ():
        role, text = _message_text(message)
        if not text:
            continue
        if role in _SYSTEM_ROLES:
            systems.append(text)
            continue
        if role == "user":
            last_user = text
            before_last_user = len(lines)
        lines.append(f"{role}: {text}")
    if system is not None:
        system_text = content_text(system)
        if system_text:
            systems.insert(0, system_text)
    system_text = "\n".join(systems)
    prefix = "\n".join([system_text, *lines[:before_last_user]]) if before_last_user else ""
    return PromptTexts("\n".join(lines), system_text, last_user, prefix)


def _message_text(message: Any) -> tuple[str, str]:
    role = _get(message, "role")
    if isinstance(role, str):
        return role, content_text(_get(message, "content"))
    # Responses API items without a role: tool outputs carry text the model reads.
    output = _get(message, "output")
    if isinstance(output, str):
        return "tool", output
    return "other", ""


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or a list of parts of which only text is kept."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = (_part_text(part) for part in content)
        return "\n".join(text for text in texts if text)
    return _part_text(content)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    text = _get(part, "text")
    if isinstance(text, str):
        return text
    # Anthropic tool_result blocks nest their own content.
    inner = _get(part, "content")
    if isinstance(inner, (str, list, tuple)):
        return content_text(inner)
    return ""


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)
