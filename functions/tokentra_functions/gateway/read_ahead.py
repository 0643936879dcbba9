"""Reading a cached entry again before it runs out, so that an entry in steady use never makes a call wait
for the database.

Each cache of the gateway (keys, price cards, provider credentials, the cache setting) keeps its entries
for a short while. When a call finds its entry in the last quarter of that while, the entry is still
served, and a task of its own reads it again; one read per entry at a time. A read that fails leaves the
entry to run out as it would have, and the next call after that reads it itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("tokentra.gateway")

__all__ = ["ReadAhead"]


class ReadAhead:
    """The reads ahead of one cache: which entries are being read, and the tasks reading them."""

    def __init__(self, what: str, expected: tuple[type[Exception], ...] = ()) -> None:
        self.what = what  # named in the log when a read fails
        self.expected = expected  # failures that are an answer, not a fault (an entry that is gone)
        self.reading: set[Hashable] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def due(self, key: Hashable, left: float, lifetime: float) -> bool:
        """Whether the entry, with `left` of its `lifetime` seconds, is to be read again now."""
        return left < lifetime / 4 and key not in self.reading

    def start(self, key: Hashable, read: Callable[[], Awaitable[object]]) -> None:
        """Read the entry again by a task of its own (call when `due`)."""
        self.reading.add(key)
        task = asyncio.get_running_loop().create_task(self._read(key, read))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[object]]) -> None:
        try:
            await read()
        except self.expected:
            pass
        except Exception as exc:  # the entry runs out as it would have; the next call reads it
            log.warning("gateway %s read ahead failed: %s", self.what, type(exc).__name__)
        finally:
            self.reading.discard(key)

    async def drain(self) -> None:
        """Wait for the reads on their way."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
