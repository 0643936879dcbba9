"""A virtual key, a model's price card, a provider connection and the semantic-cache setting in use are read
again ahead of their cache entries' end, by a task of their own: a call past the old end is answered from
memory, never waiting for the round trip, and a revoked key is still refused."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import uuid
from decimal import Decimal

import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_core.settings import get_settings
from tokentra_dev.testing.gateway_upstream import PROVIDER_KEY
from tokentra_functions.gateway import cache as gateway_cache
from tokentra_functions.gateway import policy
from tokentra_functions.gateway.admission import Admission
from tokentra_functions.key_changes import KeyChanges

# Long enough that a busy machine's late wake-ups and slow reads fit in an entry's last quarter (2 s).
TTL = 8.0


async def _scenario(dsn: str, presented: str, org_id: uuid.UUID, key_id: uuid.UUID) -> None:
    pool = AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False,
                               kwargs={"prepare_threshold": None, "row_factory": dict_row})
    await pool.open(wait=True, timeout=30)
    changes = KeyChanges()
    adm = Admission(pool, changes)
    try:
        assert await adm.key(presented) is not None
        deadline = time.monotonic() + 10
        while not changes.listening:  # entries are cached only while the listener runs
            assert time.monotonic() < deadline, "the key listener did not start"
            await asyncio.sleep(0.05)
        digest = hashlib.sha256(presented.encode()).digest()
        await adm.key(presented)
        first = adm.keys[digest]
        tokens = random.randint(10, 5000)
        cost = await adm.max_cost("openai", "gpt-4o-mini", tokens, 20)
        card = adm.cards[("openai", "gpt-4o-mini")]
        upstream = await policy.upstream_for(pool, org_id, "openai")
        assert await gateway_cache.enabled(pool, org_id) is False
        setting = gateway_cache._enabled[org_id]
        # Into the last quarter of all four entries (made moments apart): calls are answered from them and
        # start the reads, which then have most of a quarter to land before the first entry ends.
        ends = (first.until, card[0], upstream.expires, setting[0])
        end = min(ends)
        await asyncio.sleep(max(ends) - TTL / 4 + 0.05 - time.monotonic())
        assert (await adm.key(presented)) == (first.row, first.policy)
        assert await adm.max_cost("openai", "gpt-4o-mini", 100, 20) > 0
        assert await policy.upstream_for(pool, org_id, "openai") is upstream
        assert await gateway_cache.enabled(pool, org_id) is False
        # All four are read again before their old entries end, and the calls after it use them.
        while (adm.keys[digest] is first or adm.cards[("openai", "gpt-4o-mini")] is card
               or policy._credentials[(org_id, "openai")] is upstream or gateway_cache._enabled[org_id] is setting):
            assert time.monotonic() < end, "not read again before the cached entries ended"
            await asyncio.sleep(0.01)
        await asyncio.sleep(max(first.until, card[0], upstream.expires, setting[0]) - time.monotonic() + 0.05)
        renewed = adm.keys[digest]
        assert renewed is not first and renewed.until > first.until
        assert adm.cards[("openai", "gpt-4o-mini")][0] > card[0]
        renewed_upstream = policy._credentials[(org_id, "openai")]
        assert renewed_upstream is not upstream and renewed_upstream.expires > upstream.expires
        assert renewed_upstream.api_key == PROVIDER_KEY
        assert await policy.upstream_for(pool, org_id, "openai") is renewed_upstream
        renewed_setting = gateway_cache._enabled[org_id]
        assert renewed_setting[0] > setting[0] and await gateway_cache.enabled(pool, org_id) is False
        assert gateway_cache._enabled[org_id] is renewed_setting
        # Past the old end, answered from the renewed entries (nothing replaced them in between).
        assert await adm.key(presented) is not None and adm.keys[digest] is renewed
        assert await adm.max_cost("openai", "gpt-4o-mini", tokens, 20) == cost  # the same price, read again
        # A revocation still reaches the cache at once (by notification), read ahead or not.
        with connect(dsn, autocommit=True) as conn:
            assert conn.execute("select public.revoke_virtual_key(%s, %s) as revoked",
                                (org_id, key_id)).fetchone()["revoked"]
        deadline = time.monotonic() + 5
        while await adm.key(presented) is not None:
            assert time.monotonic() < deadline, "a revoked key was still admitted"
            await asyncio.sleep(0.05)
    finally:
        await adm.close()
        await changes.close()
        await pool.close()


def test_key_and_price_card_are_read_ahead(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENTRA_GATEWAY_KEY_CACHE_SECONDS", str(TTL))
    monkeypatch.setenv("TOKENTRA_GATEWAY_PRICE_SECONDS", str(TTL))
    monkeypatch.setenv("TOKENTRA_GATEWAY_CREDENTIALS_SECONDS", str(TTL))
    monkeypatch.setattr(gateway_cache, "SETTINGS_SECONDS", TTL)
    get_settings.cache_clear()
    try:
        with connect(dsn, autocommit=True) as conn:
            org = admin.create_org(conn, f"gateway-ahead-{uuid.uuid4().hex[:8]}")
            store_provider_connection(conn, org.id, "openai", PROVIDER_KEY, base_url="http://127.0.0.1:9/v1")
            row = conn.execute("select * from private.new_virtual_key(%s, 'ahead', budget_amount => %s)",
                               (org.id, Decimal("10"))).fetchone()
        asyncio.run(_scenario(dsn, row["key"], org.id, row["id"]))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
