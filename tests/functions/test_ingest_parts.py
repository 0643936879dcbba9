"""Large ingest batches, which the server stores in parts within one transaction: outcomes per event as
for any batch (first occurrence stored, repeats duplicates or conflicts, invalid events rejected by
index), and concurrent batches sharing request ids in crossed orders neither deadlock nor double-store."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor

from test_ingest import event, post, stored


def test_a_large_shuffled_batch_gets_each_event_its_outcome(functions_url, tenant, dsn):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    earlier = [event(output_tokens=rng.randint(1, 500)) for _ in range(rng.randint(5, 40))]
    assert post(functions_url, tenant.key, {"events": earlier}).json()["accepted"] == len(earlier)
    fresh = [event(output_tokens=rng.randint(1, 500), request_id=f"r-{rng.random()}")
             for _ in range(rng.randint(150, 700))]
    batch = list(fresh)
    for _ in range(rng.randint(20, 200)):  # repeats of this batch's events and of stored ones, some changed
        e = rng.choice(fresh if rng.random() < 0.7 else earlier)
        batch.append(dict(e) if rng.random() < 0.6 else dict(e, output_tokens=e["output_tokens"] + 1000))
    for _ in range(rng.randint(1, 30)):
        batch.append(event(input_tokens=-1))
    rng.shuffle(batch)

    # What every event should get: the first occurrence of an id in the batch is stored (unless stored
    # before); a later one is a duplicate when its content matches the stored event, else a conflict.
    first = {e["request_id"]: e for e in earlier}
    expected_rejected: list[tuple[int, str]] = []
    accepted = duplicates = 0
    for i, e in enumerate(batch):
        if e["input_tokens"] < 0:
            expected_rejected.append((i, "input_tokens"))
        elif e["request_id"] not in first:
            first[e["request_id"]] = e
            accepted += 1
        elif first[e["request_id"]]["output_tokens"] == e["output_tokens"]:
            duplicates += 1
        else:
            expected_rejected.append((i, "request_id"))

    body = post(functions_url, tenant.key, {"events": batch}).json()
    assert (body["accepted"], body["duplicates"]) == (accepted, duplicates), seed
    assert [(r["index"], r["field"]) for r in body["rejected"]] == expected_rejected, seed
    rows = stored(dsn, tenant.org_id)
    assert len(rows) == len(earlier) + accepted, seed
    assert {r["request_id"]: r["output_tokens"] for r in rows} == {
        rid: e["output_tokens"] for rid, e in first.items()}, seed


def test_concurrent_batches_sharing_ids_in_crossed_orders_store_each_once(functions_url, tenant, dsn):
    rng = random.Random()
    total = 0
    for _ in range(4):
        events = [event(request_id=str(uuid.uuid4())) for _ in range(rng.randint(300, 600))]
        crossed = list(reversed(events))
        shuffled = rng.sample(events, len(events))
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda b: post(functions_url, tenant.key, {"events": b}),
                                    [events, crossed, shuffled]))
        assert [r.status_code for r in results] == [200, 200, 200], [r.text[:300] for r in results]
        bodies = [r.json() for r in results]
        assert sum(b["accepted"] for b in bodies) == len(events)
        assert sum(b["duplicates"] for b in bodies) == 2 * len(events)
        assert all(b["rejected"] == [] for b in bodies)
        total += len(events)
    assert len(stored(dsn, tenant.org_id)) == total


def test_every_part_of_a_batch_is_priced_by_its_own_models(functions_url, tenant, dsn):
    """The parts of one batch share the price names resolved so far: a model only a later part names is
    resolved there, one no price matches stays unpriced in every part, and each event gets the price
    its own model resolves to, as when it is sent alone."""
    rng = random.Random()
    models = [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-20250514"), ("openai", "gpt-4o"),
              ("openai", f"no-such-model-{rng.random()}")]
    # Request ids order the parts: the first model only early, the second only late, the rest anywhere.
    n = rng.randint(400, 900)
    events = []
    for i in range(n):
        provider, model = models[0] if i < n // 5 else models[1] if i >= n - n // 5 else rng.choice(models)
        events.append(event(request_id=f"{i:05d}-{rng.random()}", provider=provider, model=model,
                            output_tokens=rng.randint(1, 900)))
    rng.shuffle(events)
    body = post(functions_url, tenant.key, {"events": events}).json()
    unknown = sum(e["model"] == models[3][1] for e in events)
    assert (body["accepted"], body["unpriced"], body["rejected"]) == (n, unknown, [])

    alone = {}
    for provider, model in models:  # one event per model, alone in its batch
        probe = event(provider=provider, model=model, input_tokens=1_000_000, output_tokens=1_000_000,
                      cached_tokens=0)
        post(functions_url, tenant.key, {"events": [probe]})
        alone[model] = probe["request_id"]
    rows = {r["request_id"]: r for r in stored(dsn, tenant.org_id)}
    price_of = {model: (rows[rid]["price_id"], rows[rid]["price_model"]) for model, rid in alone.items()}
    assert price_of[models[3][1]] == (None, None)
    for e in events:
        row = rows[e["request_id"]]
        assert (row["price_id"], row["price_model"]) == price_of[e["model"]], e["model"]
        assert row["priced"] == (e["model"] != models[3][1])


def test_a_new_connection_is_planned_for_ingest_without_writing_anything(dsn):
    """The pool runs plan_ingest on each new connection: it stores an empty batch, so the connection
    comes back idle, no claim or usage row appears anywhere, and the connection stores batches as before."""
    import asyncio

    import psycopg
    from psycopg.rows import dict_row

    from tokentra_functions.ingest import NOBODY, STAGE_TABLE, plan_ingest

    def counts() -> tuple[int, int]:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("select (select count(*) from public.usage_records), "
                               "(select count(*) from private.usage_request_ids)").fetchone()
            assert row is not None
            return row[0], row[1]

    async def plan() -> tuple[psycopg.pq.TransactionStatus, list]:
        async with await psycopg.AsyncConnection.connect(dsn, prepare_threshold=None, row_factory=dict_row) as conn:
            await plan_ingest(conn)
            status = conn.info.transaction_status
            async with conn.transaction():  # one transaction: behind a pooler, one server connection
                await conn.execute(STAGE_TABLE)
                cur = await conn.execute("select * from private.ingest_staged(%s, %s, null)", (NOBODY, NOBODY))
                outcomes = await cur.fetchall()
            return status, outcomes

    before = counts()
    status, outcomes = asyncio.run(plan())
    assert status == psycopg.pq.TransactionStatus.IDLE
    assert outcomes == []
    assert counts() == before


def test_a_caller_that_stages_only_the_batch_is_still_served(functions_url, tenant, dsn):
    """A server from before the resolved-names table creates only the staging table: the function
    creates the other itself, and the batch is stored and priced."""
    import psycopg

    from tokentra_functions.ingest_schema import STAGED

    columns = ", ".join(f"{name} {kind}" for name, kind in STAGED)
    with psycopg.connect(dsn) as conn:
        key = conn.execute("select id, project_id from public.api_keys where org_id = %s limit 1",
                           (tenant.org_id,)).fetchone()
        assert key is not None
        # Behind a pooler the server connection may hold both tables from earlier batches already.
        conn.execute(f"create temp table if not exists ingest_batch ({columns}) on commit delete rows")
        conn.execute("insert into pg_temp.ingest_batch (idx, request_id, source, provider, model, input_tokens, "
                     "output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, currency, status, "
                     "retry_count, is_timeout, is_rate_limited, is_streaming, cache_hit, metadata, occurred_at, "
                     "content_hash) values (0, %s, 'sdk', 'openai', 'gpt-4o-mini', 100, 10, 0, 0, 0, 'USD', "
                     "'success', 0, false, false, false, false, '{}', now(), '\\x00')", (str(uuid.uuid4()),))
        rows = conn.execute("select idx, outcome, priced from private.ingest_staged(%s, %s, %s)",
                            (tenant.org_id, key[0], key[1])).fetchall()
    assert rows == [(0, "accepted", True)]
