"""Process-wide SDK state: the current settings and sender, created lazily and reset after fork."""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from .config import Config
from .sender import Sender

__all__ = ["configure", "flush", "get_config", "get_sender", "reset", "stats", "submit"]

_lock = threading.RLock()
_config: Config | None = None
_sender: Sender | None = None
_UNSET: Any = object()


def get_config() -> Config:
    global _config
    config = _config
    if config is None:
        with _lock:
            if _config is None:
                _config = Config.from_env()
            config = _config
    return config


def get_sender() -> Sender:
    global _sender
    sender = _sender
    if sender is None:
        with _lock:
            if _sender is None:
                _sender = Sender(get_config())
            sender = _sender
    return sender


def submit(item: Any) -> None:
    """Hand one finished call to the sender; the hot path's only contact with the rest of the SDK."""
    sender = _sender
    (sender if sender is not None else get_sender()).submit(item)


def configure(api_key: str | None = _UNSET, url: str | None = _UNSET, **options: Any) -> Config:
    """Change settings; events already queued are flushed with the old ones first.

    Unknown option names raise TypeError. Returns the settings now in force.
    """
    global _config, _sender
    changes = dict(options)
    if api_key is not _UNSET:
        changes["api_key"] = api_key
    if url is not _UNSET:
        changes["url"] = url
    with _lock:
        new = get_config().replace(**changes)
        old, _config, _sender = _sender, new, None
    if old is not None:
        old.close()
    return new


def flush(timeout: float | None = None) -> bool:
    """Block until queued events are delivered or given up on.

    True only if nothing is left pending and no event was dropped or refused since the previous flush."""
    sender = _sender
    return True if sender is None else sender.flush(timeout)


def stats() -> dict[str, int]:
    """Counters of the current sender (enqueued, sent, dropped_queue_full, retries, ...)."""
    return get_sender().stats()


def reset() -> None:
    """Stop the sender and forget all settings, so the next use reads the environment again."""
    global _config, _sender
    with _lock:
        old, _config, _sender = _sender, None, None
    if old is not None:
        old.close()


def _shutdown() -> None:
    sender = _sender
    if sender is not None:
        sender.close()


def _after_fork_in_child() -> None:
    # The worker thread does not survive fork; the parent still owns and sends its queued events.
    global _sender, _lock
    _lock = threading.RLock()
    _sender = None


atexit.register(_shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
