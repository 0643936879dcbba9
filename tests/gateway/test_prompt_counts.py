"""The runaway guard counts every prompt of the last two loop windows in memory. Most prompts are distinct,
so at steady traffic that is hundreds of thousands of entries: they must be invisible to the garbage
collector (as tuple keys and list values they were two tracked objects each, and a full collection
walked them all inside whichever call it fell on), and only repeats go to the database."""

from __future__ import annotations

import gc
import random
import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from tokentra_core.settings import get_settings
from tokentra_functions.gateway import admission as admission_module
from tokentra_functions.gateway.admission import Admission, KeyPolicy
from tokentra_functions.key_changes import KeyChanges

OPEN = KeyPolicy(rpm=None, tpm=None, expires_at=None, blocked_until=None)


@pytest.mark.parametrize("seed", [5, 77, random.randrange(10**9)])
def test_distinct_prompts_stay_untracked_and_only_repeats_are_sent(dsn: str, seed: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    settings = get_settings()
    width = settings.gateway_loop_window_seconds
    limit = settings.gateway_loop_limit
    clock = [1_800_000_000.0 + rng.uniform(0, width)]
    monkeypatch.setattr(admission_module.time, "time", lambda: clock[0])
    # Never opened: counting and listing what is pending touch no connection.
    adm = Admission(AsyncConnectionPool(dsn, open=False), KeyChanges())
    keys = [uuid.uuid4() for _ in range(rng.randint(1, 4))]
    repeats: dict[tuple[uuid.UUID, str], int] = {}
    for _ in range(rng.randint(3000, 8000)):
        key = rng.choice(keys)
        assert adm.admit_counts(key, OPEN, uuid.uuid4().hex) == ("ok", 0)
    for _ in range(rng.randint(1, 6)):
        pair = (rng.choice(keys), uuid.uuid4().hex)
        repeats[pair] = rng.randint(2, limit)
        for _ in range(repeats[pair]):
            assert adm.admit_counts(pair[0], OPEN, pair[1]) == ("ok", 0)

    gc.collect()
    for window in adm.prompts.values():
        assert not gc.is_tracked(window.pending)
        assert not gc.is_tracked(window.synced)
    _, prompts = adm._pending()
    sent = {(uuid.UUID(p["key_id"]), p["prompt_hash"]): p["calls"] for p in prompts}
    assert sent == repeats

    # One call past the limit is a loop, whatever was counted before.
    looping = next(iter(repeats))
    for _ in range(limit - repeats[looping]):
        assert adm.admit_counts(looping[0], OPEN, looping[1]) == ("ok", 0)
    verdict, _ = adm.admit_counts(looping[0], OPEN, looping[1])
    assert verdict == "loop"

    # Two windows on, the old one goes, except the repeats the database has not counted yet.
    clock[0] += 2 * width + 1
    adm.admit_counts(keys[0], OPEN, "fresh")
    _, prompts = adm._pending()
    assert {(uuid.UUID(p["key_id"]), p["prompt_hash"]) for p in prompts} == set(repeats)
    old = [w for start, w in adm.prompts.items() if start < clock[0] - 2 * width]
    assert len(old) == 1 and set(old[0].pending) == {f"{k}|{h}" for k, h in repeats}
