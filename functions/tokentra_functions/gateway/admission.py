"""Admission of gateway calls without a database round trip on most calls, one state per server process.

- Keys: a virtual key's policy is cached in memory for gateway_key_cache_seconds. Every change to a key,
  its policy, its block or its organization's prompt setting is announced by the database on a LISTEN
  channel when it commits (key_changes, one listener per process shared with the API-key cache), and each
  process drops the entry at once, so a revocation or rotation applies everywhere as soon as the
  notification arrives. While the listener is down, nothing is served from the
  cache (every call reads the key), so a lost notification cannot keep a revoked key alive.
- Counters: requests and tokens per key per minute (limits apply over the sliding last 60 seconds: see
  sliding_wait) and prompt repeats (the runaway guard) are counted in
  memory and added to the database's windows every gateway_sync_seconds by a background task, which
  brings back every process's totals. One process enforces its limits exactly; with several, a limit can
  be passed by what the others admitted since their last sync, and the runaway guard by one call per
  process (a prompt seen once in a process stays there: only repeats are sent).
- Budgets: a call's maximum cost is computed in memory from the model's price card; calls are admitted
  against a lease, a chunk of every hard budget covering them reserved in the database in one round trip
  (private.gateway_lease) and given back unused, so the leases of all processes together never hold more
  than the budgets have room for, and what each process admits never passes its lease. Once an admitted
  call's usage is stored, the usage writer closes it as a reservation of its own and takes its amount off
  the lease (private.gateway_commit_calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn, one_async
from tokentra_core.settings import get_settings
from tokentra_functions._app import autocommit
from tokentra_functions.gateway.errors import Refusal
from tokentra_functions.gateway.read_ahead import ReadAhead
from tokentra_functions.key_changes import KeyChanges

log = logging.getLogger("tokentra.gateway")
_EPOCH_2000 = 946_684_800  # the origin the database bins loop windows from
_MTOK = Decimal("0.000001")
_CENT_E12 = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What admission needs of a virtual key besides its identity (VirtualKey)."""

    rpm: int | None
    tpm: int | None
    expires_at: float | None  # epoch seconds
    blocked_until: float | None


@dataclass(slots=True)
class _Cached:
    row: dict[str, Any]
    policy: KeyPolicy
    until: float


@dataclass(slots=True)
class _PromptWindow:
    """One loop window's counts of calls per prompt, keyed "key id|prompt hash".

    Plain strings to plain ints: a dict holding nothing else is never walked by the garbage collector,
    however many prompts it counts. As tuples and lists (two container objects per distinct prompt, most
    real prompts being distinct), they made every collection walk the last ten minutes of calls: 1-2 ms
    pauses on 1% of calls, and tens of ms for a full collection, inside whichever call they fell on."""

    synced: dict[str, int] = field(default_factory=dict)  # every process's calls, as the database last said
    pending: dict[str, int] = field(default_factory=dict)  # calls counted here, not yet in the database
    repeated: set[str] = field(default_factory=set)  # pending prompts seen twice or more: sent at the next sync


@dataclass(slots=True)
class Lease:
    """A chunk of budget this process admits calls against (id None: no hard budget covers these calls)."""

    org_id: UUID
    id: UUID | None
    granted: Decimal
    until: float
    admitted: Decimal = Decimal(0)
    used: float = 0.0
    retired: bool = False
    started: float = field(default_factory=time.monotonic)
    calls: int = 0  # admitted against it, for the rate the next lease is sized by

    def rate(self, now: float) -> float:
        """Calls per second admitted against this lease so far (0 before a tenth of a second has passed:
        too short to tell a burst from a rate)."""
        elapsed = now - self.started
        return self.calls / elapsed if elapsed >= 0.1 else 0.0


@dataclass(frozen=True, slots=True)
class Hold:
    """One admitted call's maximum cost, held in its lease; its id is the reservation its usage commits."""

    id: UUID
    lease: Lease
    amount: Decimal
    provider: str
    model: str
    attribution: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """What the usage writer needs to close the call against its lease (private.gateway_commit_calls)."""
        return {"reservation_id": str(self.id), "lease_id": str(self.lease.id), "amount_usd": str(self.amount),
                "provider": self.provider, "model": self.model, "attribution": self.attribution}


@dataclass(frozen=True, slots=True)
class PriceCard:
    input_mtok: Decimal
    output_mtok: Decimal
    request_usd: Decimal
    context_window: int | None

    def max_cost(self, input_tokens: int, max_tokens: int | None, default_max_output: int) -> Decimal:
        """The most a call can cost, as private.max_call_cost computes it (12 decimals, rounded up)."""
        if max_tokens is not None:
            out = max_tokens
        elif self.context_window is not None:
            out = min(max(self.context_window - input_tokens, 1), default_max_output)
        else:
            out = default_max_output
        cost = (input_tokens * self.input_mtok + out * self.output_mtok) * _MTOK + self.request_usd
        return cost.quantize(_CENT_E12, rounding=ROUND_UP)


_EMPTY_WINDOW = (0, 0, 0, 0)
_RATE_WINDOW = 1.0  # seconds of calls a slot's rate is measured over, across leases shorter than that


def sliding_wait(current: int, previous: int, elapsed: float, limit: int, more: int) -> int:
    """Seconds until a key may go on under a per-minute limit counted over the sliding last 60 seconds, or
    0 when it may now. `current` is counted in this clock minute so far, `previous` in the one before,
    which weighs by the share of it still inside the window; `elapsed` is seconds into this minute; `more`
    is what going on adds (1 for a request, 0 for tokens, whose count is only known afterwards). A fixed
    clock minute would let a key send its whole limit at the end of one minute and again at the start of
    the next. The same rule as the database's private.take_rate_limit."""
    left = 60 - elapsed
    counted = current + previous * left / 60
    # A request counted already may be the limit's last; tokens already at the limit leave no room.
    if counted <= limit if more else counted < limit:
        return 0
    if current + more <= limit and previous:
        # fits this minute once enough of the previous one has slid out of the window
        wait = left - (limit - current - more) * 60 / previous
    else:
        # this minute alone is full: wait for its end, then until its weight lets `more` in
        wait = left + 60 * (1 - (limit - more) / current)
    return max(1, math.ceil(wait))


class Admission:
    def __init__(self, pool: AsyncConnectionPool[AsyncConn], changes: KeyChanges) -> None:
        self.pool = pool
        self.keys: dict[bytes, _Cached] = {}
        self.changes = changes
        changes.subscribe(self.forget)
        # key id -> minute start -> [synced requests, synced tokens, pending requests, pending tokens]
        self.windows: dict[UUID, dict[int, list[int]]] = defaultdict(dict)
        # loop window start -> that window's prompt counts
        self.prompts: dict[int, _PromptWindow] = {}
        self.used_keys: set[UUID] = set()
        self.leases: dict[tuple[Any, ...], Lease] = {}
        self.lease_locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self.cards: dict[tuple[str, str], tuple[float, PriceCard]] = {}
        self._keys_ahead = ReadAhead("key")
        self._cards_ahead = ReadAhead("price card")
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._refreshed = 0.0
        self._used_sent = 0.0

    # ------------------------------------------------------------ lifecycle
    def _start(self) -> None:
        if self._tasks or self._closing:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sync_loop(), name="gateway-sync")]

    async def close(self) -> None:
        """Flush the counters and give every lease's unused part back (after the usage writer drained)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._sync_once(retire_all=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._keys_ahead.drain()
        await self._cards_ahead.drain()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ keys
    async def key(self, presented: str) -> tuple[dict[str, Any], KeyPolicy] | None:
        """The key's row and policy (cached while the invalidation listener runs), or None when invalid."""
        self._start()
        self.changes.start()
        digest = hashlib.sha256(presented.encode()).digest()
        now = time.monotonic()
        cached = self.keys.get(digest)
        if cached is not None and self.changes.listening and cached.until > now:
            policy = cached.policy
            if policy.expires_at is not None and policy.expires_at <= time.time():
                self.keys.pop(digest, None)
                return None
            # The entry stays valid while it is read again, and notifications still drop it.
            if self._keys_ahead.due(digest, cached.until - now, get_settings().gateway_key_cache_seconds):
                self._keys_ahead.start(digest, lambda: self._read_key(digest))
            return cached.row, policy
        return await self._read_key(digest)

    async def _read_key(self, digest: bytes) -> tuple[dict[str, Any], KeyPolicy] | None:
        """The key's row from the database, kept in the cache unless a change was announced meanwhile."""
        now = time.monotonic()
        generation = self.changes.generation
        async with self.pool.connection() as conn:
            cur = await conn.execute("select * from private.gateway_key(%s)", (digest,))
            row = await cur.fetchone()
        if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
            self.keys.pop(digest, None)
            return None
        policy = KeyPolicy(rpm=row["rpm"], tpm=row["tpm"],
                           expires_at=row["expires_at"].timestamp() if row["expires_at"] else None,
                           blocked_until=row["blocked_until"].timestamp() if row["blocked_until"] else None)
        # A change announced while the row was read may concern it: keep it only if none arrived.
        if self.changes.listening and self.changes.generation == generation:
            if len(self.keys) > 100_000:
                self.keys.clear()
            self.keys[digest] = _Cached(row, policy, now + get_settings().gateway_key_cache_seconds)
        return row, policy

    def forget(self, payload: str | None) -> None:
        """Drop cached keys a notification names (a key id, or org:<id> for all of an organization's), or
        every key (None: the listener reconnected or went down, and what changed meanwhile is unknown)."""
        if payload is None:
            self.keys.clear()
            return
        column, value = ("org_id", payload[4:]) if payload.startswith("org:") else ("key_id", payload)
        for digest in [d for d, c in self.keys.items() if str(c.row[column]) == value]:
            self.keys.pop(digest, None)

    # ------------------------------------------------------------ counters
    def admit_counts(self, key_id: UUID, policy: KeyPolicy, prompt_hash: str | None) -> tuple[str, int]:
        """Block rules, then rate limits, counted in memory: (verdict, retry_after)."""
        settings = get_settings()
        now = time.time()
        self.used_keys.add(key_id)
        if policy.blocked_until is not None and policy.blocked_until > now:
            return "blocked", max(1, int(policy.blocked_until - now + 0.999))
        if prompt_hash is not None and settings.gateway_loop_limit > 0:
            width = settings.gateway_loop_window_seconds
            start = _EPOCH_2000 + int((now - _EPOCH_2000) // width) * width
            seen = self.prompts.get(start)
            if seen is None:
                seen = self.prompts[start] = _PromptWindow()
            name = f"{key_id}|{prompt_hash}"
            pending = seen.pending[name] = seen.pending.get(name, 0) + 1
            calls = seen.synced.get(name, 0) + pending
            # Most prompts are seen once: only a repeat can be a loop, so a prompt goes to the database
            # from its second call here (with the first), not as one row per call.
            if calls >= 2:
                seen.repeated.add(name)
            if calls > settings.gateway_loop_limit:
                return "loop", settings.gateway_block_seconds
        if policy.rpm is None and policy.tpm is None:
            return "ok", 0
        minute = int(now // 60) * 60
        by_minute = self.windows[key_id]
        window = by_minute.setdefault(minute, [0, 0, 0, 0])
        window[2] += 1
        previous = by_minute.get(minute - 60, _EMPTY_WINDOW)
        elapsed = now - minute
        if policy.rpm is not None:
            # This call is counted; a retry would be one more.
            wait = sliding_wait(window[0] + window[2], previous[0] + previous[2], elapsed, policy.rpm, 1)
            if wait:
                return "rpm", wait
        if policy.tpm is not None:
            # The call's own tokens are not known yet: refused once the tokens counted reach the limit.
            wait = sliding_wait(window[1] + window[3], previous[1] + previous[3], elapsed, policy.tpm, 0)
            if wait:
                return "tpm", wait
        return "ok", 0

    def count_tokens(self, key_id: UUID, tokens: int) -> None:
        """A finished call's tokens count against its key's current minute at once (synced later)."""
        if tokens > 0:
            minute = int(time.time() // 60) * 60
            self.windows[key_id].setdefault(minute, [0, 0, 0, 0])[3] += tokens

    async def block(self, key_id: UUID, prompt_hash: str) -> None:
        """The kill-switch tripped here: stop the key in the database, for every process and for admins."""
        settings = get_settings()
        async with self.pool.connection() as conn:
            await conn.execute("select private.gateway_block_key(%s, %s, make_interval(secs => %s))",
                               (key_id, prompt_hash, settings.gateway_block_seconds))
        for digest in [d for d, c in self.keys.items() if c.row["key_id"] == key_id]:
            self.keys.pop(digest, None)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(get_settings().gateway_sync_seconds)
            try:
                await self._sync_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # counts stay pending and go with the next sync
                log.warning("gateway counter sync failed: %s", type(exc).__name__)

    async def _sync_once(self, retire_all: bool = False) -> None:
        await self._retire_leases(retire_all)
        windows, prompts = self._pending()
        used: set[UUID] = set()
        if time.time() - self._used_sent > 30:  # last_used_at is kept to the minute
            used, self.used_keys, self._used_sent = self.used_keys, set(), time.time()
        if not windows and not prompts and not used:
            return
        try:
            # Autocommit: one statement, one round trip (no BEGIN and COMMIT around it), several times a second.
            async with autocommit(self.pool) as conn:
                cur = await conn.execute("select private.gateway_sync_counters(%s) as totals",
                                         (Jsonb({"windows": windows, "prompts": prompts,
                                                 "used": [str(k) for k in used]}),))
                totals = (await one_async(cur))["totals"]
        except BaseException:
            self.used_keys |= used  # the counts stayed pending: sent again with the next sync
            raise
        # What was sent is in the totals now; what was counted during the round trip stays pending.
        for row in windows:
            w = self.windows.get(UUID(row["key_id"]), {}).get(_epoch(row["window_start"]))
            if w is not None:
                w[2] = max(0, w[2] - row["requests"])
                w[3] = max(0, w[3] - row["tokens"])
        for row in prompts:
            window = self.prompts.get(_epoch(row["window_start"]))
            name = f"{row['key_id']}|{row['prompt_hash']}"
            if window is not None:
                left = window.pending.get(name, 0) - row["calls"]
                if left > 0:
                    window.pending[name] = left
                else:
                    window.pending.pop(name, None)
                    window.repeated.discard(name)
        for row in totals["windows"]:
            w = self.windows[UUID(row["key_id"])].setdefault(_epoch(row["window_start"]), [0, 0, 0, 0])
            w[0], w[1] = row["requests"], row["tokens"]
        for row in totals["prompts"]:
            window = self.prompts.setdefault(_epoch(row["window_start"]), _PromptWindow())
            window.synced[f"{row['key_id']}|{row['prompt_hash']}"] = row["calls"]

    def _pending(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The counts not yet in the database (they stay pending until the database has them), past windows
        dropped. Every current window of a limited key is listed at least once a second, so the answer
        brings the other processes' counts."""
        settings = get_settings()
        now = time.time()
        current = int(now // 60) * 60
        refresh = now - self._refreshed >= 1.0
        if refresh:
            self._refreshed = now
        windows: list[dict[str, Any]] = []
        for key_id, by_minute in list(self.windows.items()):
            for minute in [m for m in by_minute if m < current - 60]:
                del by_minute[minute]
            if not by_minute:
                del self.windows[key_id]
            for minute, w in by_minute.items():
                if refresh or w[2] or w[3]:
                    windows.append({"key_id": str(key_id), "window_start": _iso(minute), "requests": w[2],
                                    "tokens": w[3]})
        prompts: list[dict[str, Any]] = []
        for start, window in self.prompts.items():
            for name in window.repeated:
                if calls := window.pending.get(name, 0):
                    key_text, prompt_hash = name.split("|", 1)
                    prompts.append({"key_id": key_text, "prompt_hash": prompt_hash, "window_start": _iso(start),
                                    "calls": calls})
        # Past loop windows go whole; a repeat the database has not counted yet stays until it has.
        oldest = now - 2 * settings.gateway_loop_window_seconds
        for start in [s for s in self.prompts if s < oldest]:
            window = self.prompts[start]
            if window.repeated:
                window.synced.clear()
                window.pending = {name: window.pending[name] for name in window.repeated if name in window.pending}
            else:
                del self.prompts[start]
        return windows, prompts

    # ------------------------------------------------------------ prices
    async def max_cost(self, provider: str, model: str, input_tokens: int, max_tokens: int | None) -> Decimal:
        settings = get_settings()
        now = time.monotonic()
        hit = self.cards.get((provider, model))
        if hit is None or hit[0] <= now:
            hit = await self._read_card(provider, model)
        elif self._cards_ahead.due((provider, model), hit[0] - now, settings.gateway_price_seconds):
            self._cards_ahead.start((provider, model), lambda: self._read_card(provider, model))
        return hit[1].max_cost(input_tokens, max_tokens, settings.budget_default_max_output_tokens)

    async def _read_card(self, provider: str, model: str) -> tuple[float, PriceCard]:
        now = time.monotonic()
        async with self.pool.connection() as conn:
            cur = await conn.execute("select * from private.gateway_price_card(%s, %s)", (provider, model))
            row = await one_async(cur)
        card = PriceCard(Decimal(row["input_mtok"]), Decimal(row["output_mtok"]), Decimal(row["request_usd"]),
                         row["context_window"])
        if len(self.cards) > 10_000:
            self.cards.clear()
        self.cards[(provider, model)] = hit = (now + get_settings().gateway_price_seconds, card)
        return hit

    # ------------------------------------------------------------ budgets
    async def reserve(self, org_id: UUID, key_id: UUID, provider: str, model: str, input_tokens: int,
                      max_tokens: int | None, attribution: dict[str, Any]) -> Hold | None:
        """Hold the call's maximum cost in this process's lease for its budgets, leasing (again) when the
        lease cannot fit it; the budget Refusal when no budget has room. None when no hard budget covers it."""
        cost = await self.max_cost(provider, model, input_tokens, max_tokens)
        slot = (org_id, key_id, provider, model, json.dumps(attribution, sort_keys=True))
        hold = self._take(slot, cost, provider, model, attribution)
        if hold is not False:
            lock = self.lease_locks.get(slot)
            if hold is not None and self._running_low(slot) and not (lock is not None and lock.locked()):
                self._spawn(self._lease_ahead(slot, cost, attribution))
            return hold
        lock = self.lease_locks.setdefault(slot, asyncio.Lock())
        async with lock:
            hold = self._take(slot, cost, provider, model, attribution)  # another call may have leased meanwhile
            if hold is not False:
                return hold
            await self._lease(slot, cost, attribution)
            hold = self._take(slot, cost, provider, model, attribution)
            if hold is False:  # a fresh lease always fits its first call
                raise RuntimeError("a new lease did not fit the call it was taken for")
            return hold

    def _running_low(self, slot: tuple[Any, ...]) -> bool:
        """A budget lease with less than a quarter of its amount or of its time left."""
        lease = self.leases.get(slot)
        if lease is None or lease.id is None:
            return False
        quarter = get_settings().gateway_lease_seconds / 4
        return lease.granted - lease.admitted < lease.granted / 4 or lease.until - time.monotonic() < quarter

    async def _lease_ahead(self, slot: tuple[Any, ...], cost: Decimal, attribution: dict[str, Any]) -> None:
        """The next lease, taken by a task of its own before this one runs out, so that round trip is not
        in a call's path. The same steps as a call that finds no room; a refusal or an error is left for
        the next call to meet on its own path."""
        lock = self.lease_locks.setdefault(slot, asyncio.Lock())
        if lock.locked():
            return
        async with lock:
            if not self._running_low(slot):  # a call leased meanwhile (or the lease is gone: calls lease)
                return
            try:
                await self._lease(slot, cost, attribution, ahead=True)
            except Refusal:
                return
            except Exception as exc:
                log.warning("gateway lease ahead failed: %s", type(exc).__name__)

    async def _lease(self, slot: tuple[Any, ...], cost: Decimal, attribution: dict[str, Any],
                     ahead: bool = False) -> None:
        """Lease for the slot (under the slot's lock). Raises the budget Refusal when no budget has room
        for `cost`. A call that found its lease spent hands the last lease's unused part back in the same
        round trip. Ahead, the current lease keeps admitting calls while the next is taken (taking it away
        first made every call in those 10-80 ms wait for the round trip: the one-client tail), and its
        unused part is handed back once the new lease replaced it."""
        org_id, key_id, provider, model, _ = slot
        settings = get_settings()
        last = self.leases.get(slot)  # the lease in use, whose rate sizes the next
        old = None if ahead else self.leases.pop(slot, None)
        previous, unused = None, Decimal(0)
        if old is not None:
            old.retired = True
            if old.id is not None:
                previous, unused = old.id, old.granted - old.admitted
        # A busy slot leases for a few seconds of its calls, not a fixed count: each lease reads the budgets'
        # spend (the raw rows since the last rollup refresh among it), so at hundreds of calls a second a
        # fixed 50 calls' lease made leasing most of the database's work per call.
        rate = last.rate(time.monotonic()) if last is not None else 0.0
        calls = max(settings.gateway_lease_calls, math.ceil(rate * settings.gateway_lease_rate_seconds))
        want = max(cost, cost * calls)
        try:
            async with self.pool.connection(timeout=settings.gateway_policy_wait_seconds) as conn:
                cur = await conn.execute(
                    "select * from private.gateway_lease(%s, %s, %s, %s, %s, %s, %s, %s, "
                    "make_interval(secs => %s), %s, %s)",
                    (org_id, key_id, provider, model, Jsonb(attribution), cost, want,
                     Decimal(str(settings.gateway_lease_share)), settings.budget_reservation_ttl_seconds,
                     previous, unused))
                row = await one_async(cur)
        except BaseException:
            if old is not None and old.id is not None:  # its unused part was not handed back with the lease
                self._spawn(self._give_back(old, unused))
            raise
        if not row["allowed"]:
            raise Refusal("budget_exceeded",
                          f"Budget exceeded: this call may cost up to ${cost.quantize(Decimal('0.000001'))} and "
                          f"budget {row['budget_id']} has ${row['remaining']} left this period.",
                          headers={"x-tokentra-budget-id": str(row["budget_id"]),
                                   "x-tokentra-budget-remaining": str(row["remaining"])})
        granted = Decimal(row["granted"]) if row["granted"] is not None else Decimal(0)
        replaced = self.leases.get(slot) if ahead else None
        # No await from here on: no call admits against the replaced lease once its unused part is counted.
        now = time.monotonic()
        lease = self.leases[slot] = Lease(org_id=org_id, id=row["lease_id"], granted=granted,
                                          until=now + settings.gateway_lease_seconds)
        if last is not None and now - last.started < _RATE_WINDOW:  # short leases measure the rate together
            lease.started, lease.calls = last.started, last.calls
        if replaced is not None:
            replaced.retired = True
            if replaced.id is not None:
                self._spawn(self._give_back(replaced, replaced.granted - replaced.admitted))

    def _take(self, slot: tuple[Any, ...], cost: Decimal, provider: str, model: str,
              attribution: dict[str, Any]) -> Hold | None | Literal[False]:
        """From the current lease, without waiting: the Hold, None (no hard budget), or False (lease again)."""
        lease = self.leases.get(slot)
        now = time.monotonic()
        if lease is None or lease.until <= now:
            return False
        lease.used = now
        if lease.id is None:
            return None
        if lease.granted - lease.admitted < cost:
            return False
        lease.admitted += cost
        lease.calls += 1
        return Hold(id=uuid.uuid4(), lease=lease, amount=cost, provider=provider, model=model,
                    attribution=attribution)

    def release(self, hold: Hold | None) -> None:
        """A call that never reached a provider gives its hold back (to the lease, or to the database when
        the lease has been handed back meanwhile)."""
        if hold is None:
            return
        lease = hold.lease
        if not lease.retired:
            lease.admitted -= hold.amount
            return
        self._spawn(self._give_back(lease, hold.amount))

    async def _give_back(self, lease: Lease, amount: Decimal) -> None:
        try:
            async with autocommit(self.pool) as conn:
                await conn.execute("select private.gateway_return_lease(%s, %s, %s, true)",
                                   (lease.org_id, lease.id, amount))
        except Exception as exc:  # the lease's TTL returns it anyway
            log.warning("gateway lease give-back failed: %s", type(exc).__name__)

    async def _retire_leases(self, everything: bool) -> None:
        """Hand back leases that went unused for a while or ran out their time, so their room serves
        other processes."""
        idle = get_settings().gateway_lease_idle_seconds
        now = time.monotonic()
        for slot, lease in list(self.leases.items()):
            lock = self.lease_locks.get(slot)
            if not everything and (lock is not None and lock.locked()):
                continue
            if everything or lease.until <= now or now - lease.used > idle:
                del self.leases[slot]
                lease.retired = True
                if lease.id is not None:
                    await self._give_back(lease, lease.granted - lease.admitted)


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


def _epoch(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp).timestamp())


__all__ = ["Admission", "Hold", "KeyPolicy", "Lease", "PriceCard"]
