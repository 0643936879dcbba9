"""Usage of gateway calls, written through the ingest path after the response, off the request's path and
off the server's event loop.

Each finished call is handed, as one JSON line, to the usage writer, a process of its own
(usage_writer.py) that batches calls, stores them with the ingest function's own store_events (same
validation, pricing, exactly-once claim by request id), then closes each call admitted against a budget
lease as a reservation of its own at its stored cost, taking it off the lease; it retries a failed write with
backoff under the same ids. The server keeps every call until the writer confirms it; a writer that dies
is started again and sent every unconfirmed call, which the request-id claim and the repeatable commit
store once. On shutdown the server waits for every confirmation before its leases are handed back. What is
lost is bounded to a crash of the server process before it handed a call to the writer, the last
FLUSH_SECONDS of calls (a writer that outlives a dying server still writes what it received); a lost
call's amount stays held in its lease until the lease's TTL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from contextlib import suppress
from typing import Any

from tokentra_functions.auth import ApiKeyOrg
from tokentra_functions.gateway import metrics
from tokentra_functions.gateway.admission import Admission

log = logging.getLogger("tokentra.gateway.usage")
WRITER = "tokentra_functions.gateway.usage_writer"
FLUSH_SECONDS = 0.05


def encode(seq: int, key: ApiKeyOrg, event: dict[str, Any], hold: dict[str, Any] | None) -> bytes:
    """One call as the writer reads it (usage_writer.parse): one line of JSON."""
    return json.dumps({"seq": seq, "key": [str(key.key_id), str(key.org_id),
                                           str(key.project_id) if key.project_id else None],
                       "event": event, "hold": hold}, separators=(",", ":"), default=str).encode() + b"\n"


class UsageRecorder:
    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.unconfirmed: dict[int, bytes] = {}  # sequence number -> the call's line, until the writer confirms
        self.seq = 0
        self.pending: list[bytes] = []  # lines not yet written to the writer's pipe
        self._flush: asyncio.TimerHandle | None = None
        self.stored = 0
        self.failed = 0
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, key: ApiKeyOrg, event: dict[str, Any], hold: dict[str, Any] | None = None) -> None:
        """Hand one call's event to the writer (never blocks, never raises); its tokens count against the
        key's tokens-per-minute window at once. hold: the call's hold in a budget lease (Hold.report)."""
        self._idle.clear()
        self.admission.count_tokens(key.key_id, event.get("input_tokens", 0) + event.get("output_tokens", 0))
        self.seq += 1
        self.pending.append(line := encode(self.seq, key, event, hold))
        self.unconfirmed[self.seq] = line
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._supervise(), name="gateway-usage")
        if self._flush is None:
            # Calls go to the writer a few times a second, many in one write: one system call and one
            # wake-up of the writer for all of them instead of one per call.
            self._flush = loop.call_later(FLUSH_SECONDS, self._send_pending)

    def _send_pending(self) -> None:
        self._flush = None
        lines, self.pending = self.pending, []
        proc = self.proc
        if lines and proc is not None and proc.returncode is None and proc.stdin is not None \
                and not proc.stdin.is_closing():
            proc.stdin.write(b"".join(lines))  # buffered by the pipe's transport; a dead writer's calls are sent again

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything submitted so far is confirmed (shutdown, tests, benchmarks)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._send_pending()
        await self.drain()
        self._closing = True
        proc = self.proc
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()  # the writer writes what it has and exits
        if self.task is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.task), 10)
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    @property
    def writer_pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def _supervise(self) -> None:
        """Keep a writer running while calls wait for it: start it, send it what is unconfirmed, read its
        confirmations; when it dies, start another."""
        backoff = 0.1
        while not self._closing:
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", WRITER, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    limit=1 << 20)
            except OSError as exc:
                log.error("gateway usage writer could not start: %s", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if proc.stdin is None or proc.stdout is None:  # asked for pipes: always there
                raise RuntimeError("the usage writer has no pipes")
            # Everything unconfirmed, in order, then this writer takes new calls as they come (no await in
            # between, so no call is left out or sent twice to it).
            self.pending = []
            proc.stdin.write(b"".join(self.unconfirmed[seq] for seq in sorted(self.unconfirmed)))
            self.proc = proc
            while line := await proc.stdout.readline():
                self._confirmed(line)
                backoff = 0.1
            code = await proc.wait()
            if self._closing and not self.unconfirmed:
                return
            self.restarts += 1
            log.warning("gateway usage writer exited (code %s) with %d calls unconfirmed: starting another",
                        code, len(self.unconfirmed))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _confirmed(self, line: bytes) -> None:
        try:
            done = json.loads(line)
        except ValueError:
            return
        for seq in done["done"]:
            self.unconfirmed.pop(seq, None)
        self.stored += done["stored"]
        self.failed += done["failed"]
        for provider, cost in done["costs"].items():
            metrics.COST.labels(provider).inc(float(cost))
        if not self.unconfirmed:
            self._idle.set()
