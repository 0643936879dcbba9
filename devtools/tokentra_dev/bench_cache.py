"""`tokentra bench cache`: the semantic cache's lookup speed and recall at scale, and its hit quality.

Speed and recall: in a scratch database (cloned from the migrated test template, dropped afterwards),
`--entries` synthetic
unit vectors of 384 dimensions spread over `--orgs` organizations (the largest holds half), 4 models and
2 parameter sets; the HNSW index built once; then `private.cache_lookup` timed as it runs (organization,
model and parameter filters, exact hash first), and its nearest candidates compared with an exact scan of
the same query in the same run (recall@10).

Quality: a generated labelled set (tokentra_dev.cache_pairs, seeds `--seeds`, none of them tuned on)
embedded for real by the configured embedder and run through lookup/store in the same database: of the
hits, how many were wrong, and how many true duplicates hit, per trap kind.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import statistics
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tokentra_core.settings import get_settings

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5")
PARAMS = ("p-temperature-0", "p-temperature-0.7")


def _scratch(base: str) -> str:
    """A clone of the tests' migrated template (built once per set of migrations): seconds, not minutes."""
    from tokentra_dev import testdb

    return testdb.create(base)


def _org_sizes(entries: int, orgs: int) -> list[int]:
    """The largest organization holds half; the rest share the other half, decreasing."""
    largest = entries // 2
    weights = [1 / (i + 1) for i in range(orgs - 1)]
    rest = [max(1, int((entries - largest) * w / sum(weights))) for w in weights]
    return [largest, *rest]


def _load(dsn: str, entries: int, orgs: int, log: Any) -> list[str]:
    t0 = time.perf_counter()
    ids = [str(uuid.uuid4()) for _ in range(orgs)]
    sizes = _org_sizes(entries, orgs)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.organizations (id, name) select unnest(%s::uuid[]), 'bench'", (ids,))
        conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses) "
                     "select unnest(%s::uuid[]), true, true", (ids,))
        conn.execute("drop index if exists public.semantic_cache_embedding_384_idx")
        conn.execute("set max_parallel_workers = 0")
        for org, size in zip(ids, sizes, strict=True):
            conn.execute(
                """insert into public.semantic_cache (org_id, model, params_hash, embedding_model, embedding,
                     prompt_hash, response, expires_at, guard_key)
                   select %s, (array['gpt-4o','gpt-4o-mini','claude-sonnet-4-5','claude-haiku-4-5'])[1 + i %% 4],
                          (array['p-temperature-0','p-temperature-0.7'])[1 + (i / 4) %% 2], 'bench',
                          extensions.l2_normalize(array(select random() - 0.5 + i * 0 from generate_series(1, 384)
                                                 )::extensions.vector),
                          md5(%s || i) || md5(i::text), '{}', now() + interval '1 day', 'g'
                   from generate_series(1, %s) i""", (org, org, size))
        log(f"loaded {entries:,} entries over {orgs} organizations (largest {sizes[0]:,}) "
            f"in {time.perf_counter() - t0:.1f} s")
        t1 = time.perf_counter()
        log("building the HNSW index...")
        conn.execute("set maintenance_work_mem = '2GB'")
        conn.execute("select private.ensure_semantic_cache_index(384)")
        conn.execute("analyze public.semantic_cache")
        log(f"HNSW index (m=16, ef_construction=64) built in {time.perf_counter() - t1:.1f} s")
    return ids


_NEAREST = """
select c.id from public.semantic_cache c
where c.embedding_dims = 384 and c.org_id = %s and c.model = %s and c.params_hash = %s
  and c.system_prompt_hash = '' and c.context_hash = '' and c.embedding_model = 'bench' and c.expires_at > now()
order by (c.embedding::extensions.vector(384)) operator(extensions.<=>) %s::extensions.vector(384) limit 10"""


def _speed(dsn: str, ids: list[str], sizes: list[int], queries: int, log: Any) -> dict[str, Any]:
    rng = random.Random(7)
    latencies: list[float] = []
    baseline: list[float] = []  # the same lookups' nearest entries by a sequential scan, no index
    recalls: list[float] = []
    big_recalls: list[float] = []
    small_recalls: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for q in range(queries):
            # Most lookups in the largest organization, the rest spread over the others.
            org = ids[0] if q % 2 == 0 else rng.choice(ids[1:])
            model, params = rng.choice(MODELS), rng.choice(PARAMS)
            (vector,) = conn.execute("select embedding::text from public.semantic_cache where org_id = %s "
                                     "and model = %s and params_hash = %s offset floor(random() * 20) limit 1",
                                     (org, model, params)).fetchone() or (None,)
            if vector is None:
                continue
            noisy = [float(x) + rng.gauss(0, 0.02) for x in vector.strip("[]").split(",")]
            literal = "[" + ",".join(f"{x:.6f}" for x in noisy) + "]"
            t0 = time.perf_counter()
            conn.execute("select * from private.cache_lookup(%s, %s, %s, '', '', %s, %s::extensions.vector, 'bench',"
                         " 'g', '{}', '{}', '', '', 0.5)", (org, model, params, "0" * 64, literal)).fetchall()
            latencies.append((time.perf_counter() - t0) * 1000)
            # The candidates the lookup saw (its `p_candidates`, 10) against an exact scan of the scope.
            with conn.transaction():
                conn.execute("select set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                             "set_config('hnsw.ef_search', '100', true)")
                approx = [r[0] for r in conn.execute(_NEAREST, (org, model, params, literal))]
            with conn.transaction():
                conn.execute("set local enable_indexscan = off")
                conn.execute("set local enable_bitmapscan = off")
                t1 = time.perf_counter()
                exact = [r[0] for r in conn.execute(_NEAREST, (org, model, params, literal))]
                baseline.append((time.perf_counter() - t1) * 1000)
            if exact:
                recalls.append(len(set(approx) & set(exact)) / len(exact))
                (big_recalls if org == ids[0] else small_recalls).append(recalls[-1])
    latencies.sort()
    baseline.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    base95 = baseline[int(0.95 * (len(baseline) - 1))]
    out = {"lookups": len(latencies), "p50_ms": round(statistics.median(latencies), 2), "p95_ms": round(p95, 2),
           "exact_scan_p50_ms": round(statistics.median(baseline), 2), "exact_scan_p95_ms": round(base95, 2),
           "p95_ratio_to_exact_scan": round(p95 / base95, 3),
           "recall_at_10": round(statistics.mean(recalls), 4),
           "recall_at_10_largest_org": round(statistics.mean(big_recalls), 4) if big_recalls else None,
           "recall_at_10_other_orgs": round(statistics.mean(small_recalls), 4) if small_recalls else None,
           "load_average": round(os.getloadavg()[0], 1)}
    log(f"lookup p50 {out['p50_ms']} ms, p95 {out['p95_ms']} ms over {out['lookups']} lookups (target p95 under "
        f"10 ms); the same queries by sequential scan: p50 {out['exact_scan_p50_ms']} ms, p95 "
        f"{out['exact_scan_p95_ms']} ms (ratio {out['p95_ratio_to_exact_scan']}); load average "
        f"{out['load_average']} on {os.cpu_count()} cores")
    log(f"recall@10 against exact search {out['recall_at_10']} (target 0.95): largest organization "
        f"{out['recall_at_10_largest_org']}, others {out['recall_at_10_other_orgs']}")
    return out


async def _quality(dsn: str, seeds: list[int], cases: int, threshold: float | None, log: Any) -> dict[str, Any]:
    from tokentra_core.cache import lookup, make_embedder, store
    from tokentra_dev.cache_pairs import generate

    settings = get_settings()
    embedder = make_embedder(settings.cache_embedder, None, settings.cache_embedding_dims, threshold)
    org = str(uuid.uuid4())
    kinds: Counter[str] = Counter()
    right: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    examples: list[str] = []
    t0 = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("insert into public.organizations (id, name) values (%s, 'bench quality')", (org,))
        await conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses) "
                           "values (%s, true, true)", (org,))
        all_cases = [c for seed in seeds for c in generate(seed, cases)]
        for case in all_cases:
            msgs = [{"role": "system", "content": case.base.system}, {"role": "user", "content": case.base.text}]
            await store(conn, embedder, org_id=org, provider="openai", model="gpt-4o-mini", messages=msgs,
                        response={"meaning": case.base.meaning, "system": case.base.system},
                        input_tokens=100, output_tokens=50, task_type="faq")
        for case in all_cases:
            for kind, prompt in [("duplicate", d) for d in case.duplicates] + case.traps:
                msgs = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.text}]
                result = await lookup(conn, embedder, org_id=org, model="gpt-4o-mini", messages=msgs)
                kinds[kind] += 1
                if result.hit:
                    ok = (result.response["meaning"], result.response["system"]) == (prompt.meaning, prompt.system)
                    (right if ok else wrong)[kind] += 1
                    if not ok and len(examples) < 8:
                        examples.append(f"{kind}: {prompt.text!r}")
    hits = sum(right.values()) + sum(wrong.values())
    out = {"seeds": seeds, "embedder": embedder.name, "threshold": embedder.threshold,
           "prompts": sum(kinds.values()) + len(all_cases),
           "duplicate_hit_rate": round(right["duplicate"] / max(1, kinds["duplicate"]), 4),
           "wrong_share_of_hits": round(sum(wrong.values()) / max(1, hits), 4),
           "by_kind": {k: {"lookups": kinds[k], "right_hits": right[k], "wrong_hits": wrong[k]} for k in kinds},
           "wrong_examples": examples, "seconds": round(time.perf_counter() - t0, 1)}
    log(f"quality on seeds {seeds} ({embedder.name}, threshold {embedder.threshold}): "
        f"{out['duplicate_hit_rate']:.1%} of true duplicates hit (target 80%), "
        f"{out['wrong_share_of_hits']:.1%} of hits wrong (target under 2%)")
    for kind, row in out["by_kind"].items():
        log(f"  {kind:14s} lookups {row['lookups']:4d}  right hits {row['right_hits']:4d}  "
            f"wrong hits {row['wrong_hits']:3d}")
    for example in examples:
        log(f"  wrong hit: {example}")
    return out


def run(entries: int = 100_000, orgs: int = 100, queries: int = 300, seeds: str = "101,102", cases: int = 80,
        threshold: float | None = None, keep: bool = False, parts: str = "quality,speed") -> dict[str, Any]:
    log = functools.partial(print, flush=True)
    base = get_settings().dsn
    t0 = time.perf_counter()
    dsn = _scratch(base)
    database = conninfo_to_dict(dsn)["dbname"]
    log(f"scratch database {database}: cloned from the migrated template in {time.perf_counter() - t0:.1f} s")
    out: dict[str, Any] = {"entries": entries, "organizations": orgs}
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
        if "quality" in parts:
            out["quality"] = asyncio.run(_quality(dsn, seed_list, cases, threshold, log))
        if "speed" in parts:
            ids = _load(dsn, entries, orgs, log)
            out["speed"] = _speed(dsn, ids, _org_sizes(entries, orgs), queries, log)
    finally:
        if not keep:
            from tokentra_dev import testdb

            testdb.drop(dsn)
    return out
