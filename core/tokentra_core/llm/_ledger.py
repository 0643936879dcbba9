"""Where the LLM layer's calls are recorded and capped: the internal organization's usage.

Every call is posted to the ingest function (the path customers use) with a short-lived key of the
internal organization, minted once per process; the customer organization the call was made for is its
`user_id` tag, so it lands in usage_records.end_user_id. The AI cap reads the recorded spend back
(public.ai_spend) and adds the calls this process made that are not yet visible there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from pydantic import SecretStr

from tokentra_core.db import AsyncConn, one_async

__all__ = ["Ledger", "Spend", "hash_text"]

log = logging.getLogger("tokentra.llm")
KEY_TTL = timedelta(days=1)
KEY_RENEW_BEFORE = timedelta(hours=12)  # a key with less life left than this is replaced

# One internal ingest key per process and database: (key, expires_at). Two ledgers racing may both mint
# one; harmless, and simpler than a lock shared across event loops.
_KEYS: dict[str, tuple[SecretStr, datetime]] = {}


def hash_text(text: str) -> str | None:
    """sha256 of the whitespace-normalized text, as the SDK hashes prompts; prompts are never stored."""
    normalized = " ".join(text.split())
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest() if normalized else None


@dataclass(frozen=True)
class Spend:
    spend_usd: Decimal  # recorded this month, plus this process's calls not yet visible
    cap_usd: Decimal


@dataclass
class Ledger:
    dsn: str
    ingest_url: str
    _conn: AsyncConn | None = None
    _http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=10))
    # Events posted to ingest but not yet confirmed stored, by request id, with their org and cost.
    _unconfirmed: dict[str, tuple[str, Decimal, dict[str, Any]]] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _key_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _connection(self) -> AsyncConn:
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, prepare_threshold=None, row_factory=dict_row)
            return self._conn

    async def _key(self) -> SecretStr:
        async with self._key_lock:
            held = _KEYS.get(self.dsn)
            if held is None or held[1] - datetime.now(UTC) < KEY_RENEW_BEFORE:
                conn = await self._connection()
                cur = await conn.execute("select key, expires_at from private.mint_internal_ingest_key(%s)",
                                         (KEY_TTL,))
                row = await one_async(cur)
                held = _KEYS[self.dsn] = (SecretStr(row["key"]), row["expires_at"])
            return held[0]

    async def spend(self, org_id: str) -> Spend:
        """The organization's AI spend this month (UTC) and its cap."""
        # Snapshot the unconfirmed calls first: one confirmed meanwhile is then counted twice, never missed.
        pending = sum((cost for org, cost, _ in list(self._unconfirmed.values()) if org == org_id), Decimal(0))
        conn = await self._connection()
        cur = await conn.execute("select spend_usd, cap_usd from public.ai_spend(%s)", (org_id,))
        row = await one_async(cur)
        return Spend(spend_usd=Decimal(row["spend_usd"]) + pending, cap_usd=Decimal(row["cap_usd"]))

    async def record(self, org_id: str, cost: Decimal, event: dict[str, Any]) -> None:
        """Post the event (and any earlier ones not yet stored) to the ingest function."""
        self._unconfirmed[event["request_id"]] = (org_id, cost, event)
        await self.flush()

    async def flush(self) -> bool:
        """Post every unconfirmed event; True when none is left. A failed post is retried on the next call."""
        async with self._flush_lock:
            events = [event for _, _, event in self._unconfirmed.values()]
            if not events:
                return True
            try:
                key = await self._key()
                response = await self._http.post(
                    self.ingest_url, json={"events": events},
                    headers={"Authorization": f"Bearer {key.get_secret_value()}"})
            except (httpx.HTTPError, psycopg.Error) as exc:
                log.warning("llm usage not recorded yet (%d events): %s", len(events), type(exc).__name__)
                return False
            if response.status_code == 401:  # expired or revoked meanwhile: mint another next time
                _KEYS.pop(self.dsn, None)
            if response.status_code != 200:
                log.warning("llm usage not recorded yet (%d events): ingest answered %d",
                            len(events), response.status_code)
                return False
            for rejection in response.json().get("rejected", []):
                # Never storable as sent; kept out of the retry loop, and said loudly.
                log.error("llm usage event %s rejected by ingest: %s: %s",
                          events[rejection["index"]]["request_id"], rejection.get("field"), rejection.get("message"))
            for event in events:
                self._unconfirmed.pop(event["request_id"], None)
            return True

    async def aclose(self) -> None:
        if not await self.flush():
            log.error("llm usage of %d calls could not be recorded", len(self._unconfirmed))
        await self._http.aclose()
        if self._conn is not None:
            await self._conn.close()
