"""API-key changes as the database announces them, for the caches that keep verified keys per process.

Triggers on public.api_keys (revoke, rotate, expiry, scopes, delete) and on what else a cached key depends
on call pg_notify on CHANNEL when the change commits; the payload is a key id, or org:<id> for every key
of an organization. One LISTEN connection per process delivers them to every subscribed cache, which drops
what they name. While the listener is down `listening` is False and a cache must serve nothing from memory,
so a lost notification cannot keep a revoked key alive; when it comes back every cache is emptied, since
what changed meanwhile is unknown. `generation` moves with every notification and reconnect: a cache
stores a key it read only if no notification arrived while it was reading (one could concern that key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from tokentra_core.settings import get_settings

__all__ = ["CHANNEL", "KeyChanges", "key_changes"]

log = logging.getLogger("tokentra.functions")
CHANNEL = "tokentra_gateway_keys"


class KeyChanges:
    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.listening = False
        self.generation = 0
        # each is called with a payload, or None for "forget everything"
        self._subscribers: list[Callable[[str | None], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def subscribe(self, forget: Callable[[str | None], None]) -> None:
        self._subscribers.append(forget)

    def start(self) -> None:
        """Listen from now on (in the running loop); cheap to call on every request."""
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="api-key-listener")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _announce(self, payload: str | None) -> None:
        self.generation += 1
        for forget in self._subscribers:
            forget(payload)

    async def _listen(self) -> None:
        settings = get_settings()
        # A transaction pooler drops LISTEN: gateway_listen_url names a direct or session-mode URL then.
        url = self.url or settings.gateway_listen_url or settings.dsn
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    self._announce(None)
                    self.listening = True
                    async for note in conn.notifies():
                        self._announce(note.payload)
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as exc:
                log.warning("API key change listener down, keys read per request: %s", type(exc).__name__)
            self.listening = False
            self._announce(None)
            await asyncio.sleep(1.0)


def key_changes(state: Any) -> KeyChanges:
    """The app's listener (`app.state`), made on first use and closed with the app's pool."""
    changes: KeyChanges | None = getattr(state, "key_changes", None)
    if changes is None:
        changes = state.key_changes = KeyChanges()
        hooks = getattr(state, "on_close", None)
        if hooks is not None:
            hooks.append(changes.close)
    changes.start()
    return changes
